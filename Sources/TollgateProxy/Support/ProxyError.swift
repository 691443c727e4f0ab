import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An error the gateway itself answers with, in Mistral's error envelope so Mistral and OpenAI
/// clients parse it: `{"object":"error","message":…,"type":…,"param":null,"code":…}`.
struct ProxyError: Error, Sendable {
    var status: HTTPResponse.Status
    var type: String
    var code: String
    var message: String
    var headers: HTTPFields = [:]

    static let invalidKey = ProxyError(
        status: .unauthorized, type: "authentication_error", code: "invalid_api_key",
        message: "Invalid or unknown API key. Send 'Authorization: Bearer tg_live_…'.")
    static func forbidden(_ code: String, _ message: String) -> ProxyError {
        ProxyError(status: .forbidden, type: "permission_error", code: code, message: message)
    }
    static func badRequest(_ code: String, _ message: String) -> ProxyError {
        ProxyError(status: .badRequest, type: "invalid_request_error", code: code, message: message)
    }
    static func tooLarge(limit: Int) -> ProxyError {
        ProxyError(status: .contentTooLarge, type: "invalid_request_error", code: "request_too_large",
                   message: "Request bodies are limited to \(limit) bytes.")
    }
    static func notFound(_ path: String) -> ProxyError {
        ProxyError(status: .notFound, type: "invalid_request_error", code: "not_found",
                   message: "No route for \(path) on this gateway.")
    }
    static func rateLimited(_ message: String, retryAfterMilliseconds: Int64, code: String = "rate_limited") -> ProxyError {
        let seconds = max(1, (retryAfterMilliseconds + 999) / 1000)
        return ProxyError(status: .tooManyRequests, type: "rate_limited", code: code, message: message,
                          headers: [.retryAfter: "\(seconds)"])
    }
    static func unavailable(_ message: String, retryAfterSeconds: Int = 2) -> ProxyError {
        ProxyError(status: .serviceUnavailable, type: "service_unavailable", code: "gateway_unavailable", message: message,
                   headers: [.retryAfter: "\(retryAfterSeconds)"])
    }
    static func upstream(_ status: HTTPResponse.Status, _ message: String) -> ProxyError {
        ProxyError(status: status, type: "upstream_error", code: status == .gatewayTimeout ? "upstream_timeout" : "upstream_unavailable",
                   message: message)
    }

    var body: ByteBuffer {
        var object = "{\"object\":\"error\",\"message\":"
        object += JSONText.quoted(message)
        object += ",\"type\":" + JSONText.quoted(type) + ",\"param\":null,\"code\":" + JSONText.quoted(code) + "}"
        return ByteBuffer(string: object)
    }

    func response(requestID: String) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        fields[.xRequestID] = requestID
        return Response(status: status, headers: fields, body: .init(byteBuffer: body))
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("x-request-id")!
    static let xTollgateMetadata = Self("x-tollgate-metadata")!
    static let traceparent = Self("traceparent")!
    static let rateLimitRemainingRequests = Self("x-ratelimit-remaining-requests")!
    static let rateLimitRemainingTokens = Self("x-ratelimit-remaining-tokens")!
    static let rateLimitLimitRequests = Self("x-ratelimit-limit-requests")!
    static let rateLimitLimitTokens = Self("x-ratelimit-limit-tokens")!
}

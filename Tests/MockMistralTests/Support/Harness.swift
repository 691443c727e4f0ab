import AsyncHTTPClient
import Foundation
import MockMistral
import NIOCore
import NIOHTTP1

/// A response as the tests look at it.
struct HTTPResult: @unchecked Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: String

    /// The body parsed with Foundation, independently of the mock's own JSON code.
    var json: [String: Any] {
        get throws {
            let object = try JSONSerialization.jsonObject(with: Data(body.utf8))
            guard let dictionary = object as? [String: Any] else { throw HarnessError.notAnObject(body) }
            return dictionary
        }
    }

    func header(_ name: String) -> String? { headers.first(name: name) }
}

enum HarnessError: Error {
    case notAnObject(String)
    case unexpected(String)
}

/// Minimal client for a running mock (a real TCP connection through AsyncHTTPClient).
struct MockHTTP: Sendable {
    let baseURL: String
    static let defaultKey = "sk-test-key"

    func send(
        _ method: HTTPMethod, _ path: String, body: String? = nil, key: String? = MockHTTP.defaultKey,
        headers: [(String, String)] = [], timeout: TimeAmount = .seconds(30)
    ) async throws -> HTTPResult {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if body != nil { request.headers.add(name: "Content-Type", value: "application/json") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: String(buffer: buffer))
    }

    func post(_ path: String, _ body: String, key: String? = MockHTTP.defaultKey, headers: [(String, String)] = []) async throws -> HTTPResult {
        try await send(.POST, path, body: body, key: key, headers: headers)
    }

    func get(_ path: String, key: String? = MockHTTP.defaultKey) async throws -> HTTPResult {
        try await send(.GET, path, key: key)
    }

    /// Streams a response, returning the head and every body chunk received before the stream
    /// ended or failed (and the failure, if any), so tests can look at truncated streams.
    func stream(_ path: String, _ body: String) async throws -> (status: Int, headers: HTTPHeaders, received: String, error: (any Error)?) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(MockHTTP.defaultKey)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        var received = ""
        do {
            for try await chunk in response.body {
                received += String(buffer: chunk)
            }
            return (Int(response.status.code), response.headers, received, nil)
        } catch {
            return (Int(response.status.code), response.headers, received, error)
        }
    }
}

/// Starts a mock on a free port for the duration of `body`.
func withMock<T: Sendable>(
    _ configuration: MockMistralConfiguration = MockMistralConfiguration(),
    _ body: (MockMistral, MockHTTP) async throws -> T
) async throws -> T {
    let mock = MockMistral(configuration: configuration)
    return try await mock.withRunningServer { server in
        try await body(mock, MockHTTP(baseURL: server.baseURL))
    }
}

/// Splits an SSE body into its events (the text between blank lines).
func sseEvents(_ body: String) -> [String] {
    body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
}

/// The JSON payloads of `data:` events other than `[DONE]`.
func sseChunks(_ body: String) throws -> [[String: Any]] {
    try sseEvents(body).compactMap { event in
        guard event.hasPrefix("data: ") else { throw HarnessError.unexpected("not a data event: \(event)") }
        let payload = String(event.dropFirst(6))
        if payload == "[DONE]" { return nil }
        return try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any]
    }
}

/// Request bodies used across tests.
enum Bodies {
    static func chat(_ content: String = "Hello, world!", model: String = "mistral-small-latest", extra: String = "") -> String {
        let escaped = String(data: try! JSONSerialization.data(withJSONObject: [content], options: []), encoding: .utf8)!.dropFirst().dropLast()
        return #"{"model":"\#(model)","messages":[{"role":"user","content":\#(escaped)}]\#(extra.isEmpty ? "" : "," + extra)}"#
    }
}

extension Dictionary where Key == String, Value == Any {
    func object(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
    func array(_ key: String) -> [[String: Any]]? { self[key] as? [[String: Any]] }
    func int(_ key: String) -> Int? { (self[key] as? NSNumber)?.intValue }
    func string(_ key: String) -> String? { self[key] as? String }
}

func isHex32(_ text: String) -> Bool {
    text.count == 32 && text.allSatisfy { $0.isHexDigit && !$0.isUppercase }
}

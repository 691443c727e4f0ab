import Foundation
import HTTPTypes

/// An error a client caused (or a server fault), rendered as RFC 9457 `application/problem+json`.
public struct Problem: Error, Sendable, Codable, Equatable {
    public struct FieldError: Sendable, Codable, Equatable {
        public var field: String
        public var message: String
        public init(field: String, message: String) { self.field = field; self.message = message }
    }

    public var type: String
    public var title: String
    public var status: Int
    public var detail: String?
    public var instance: String?
    public var errors: [FieldError]?

    public init(status: Int, type: String, title: String, detail: String? = nil, errors: [FieldError]? = nil) {
        self.status = status; self.type = type; self.title = title; self.detail = detail; self.errors = errors
    }

    static let base = "https://tollgate.dev/problems/"

    public static func badRequest(_ detail: String, errors: [FieldError]? = nil) -> Problem {
        Problem(status: 400, type: base + "invalid-request", title: "Invalid request", detail: detail, errors: errors)
    }
    public static func validation(_ errors: [FieldError]) -> Problem {
        Problem(status: 400, type: base + "validation", title: "Invalid fields",
                detail: errors.map { "\($0.field): \($0.message)" }.joined(separator: "; "), errors: errors)
    }
    public static func field(_ field: String, _ message: String) -> Problem { validation([FieldError(field: field, message: message)]) }
    public static let unauthenticated = Problem(
        status: 401, type: base + "unauthenticated", title: "Unauthenticated",
        detail: "Send a valid admin token as 'Authorization: Bearer tg_admin_…'")
    public static func forbidden(_ detail: String) -> Problem {
        Problem(status: 403, type: base + "forbidden", title: "Forbidden", detail: detail)
    }
    public static func notFound(_ what: String) -> Problem {
        Problem(status: 404, type: base + "not-found", title: "Not found", detail: "\(what) not found")
    }
    public static func conflict(_ detail: String) -> Problem {
        Problem(status: 409, type: base + "conflict", title: "Conflict", detail: detail)
    }
    public static func idempotencyMismatch() -> Problem {
        Problem(status: 422, type: base + "idempotency-key-reused", title: "Idempotency-Key reused",
                detail: "This Idempotency-Key was already used with a different request body or operation")
    }
    public static func payloadTooLarge(limit: Int) -> Problem {
        Problem(status: 413, type: base + "payload-too-large", title: "Payload too large",
                detail: "Request bodies are limited to \(limit) bytes")
    }
    public static func unavailable(_ detail: String) -> Problem {
        Problem(status: 503, type: base + "unavailable", title: "Service unavailable", detail: detail)
    }
    public static let internalError = Problem(
        status: 500, type: base + "internal", title: "Internal error",
        detail: "The server failed to handle the request; the request id is in the x-request-id header")

    public var jsonData: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)) ?? Data("{\"status\":\(status)}".utf8)
    }
}

/// Collects field errors so a request reports all of them at once.
struct FieldValidator {
    private(set) var errors: [Problem.FieldError] = []

    mutating func fail(_ field: String, _ message: String) { errors.append(.init(field: field, message: message)) }

    mutating func check(_ condition: Bool, _ field: String, _ message: @autoclosure () -> String) {
        if !condition { fail(field, message()) }
    }

    mutating func length(_ value: String?, _ field: String, min: Int = 1, max: Int) {
        guard let value else { return }
        // Count code points, as JSON Schema's maxLength and Postgres' length() do (not graphemes).
        let length = value.unicodeScalars.count
        check(length >= min && length <= max, field, "must be \(min) to \(max) characters long")
        check(!value.unicodeScalars.contains { $0.properties.generalCategory == .control }, field,
              "must not contain control characters")
    }

    mutating func range(_ value: Int?, _ field: String, _ range: ClosedRange<Int>) {
        guard let value else { return }
        check(range.contains(value), field, "must be between \(range.lowerBound) and \(range.upperBound)")
    }

    func throwIfFailed() throws {
        if !errors.isEmpty { throw Problem.validation(errors) }
    }
}

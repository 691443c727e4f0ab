import Foundation
import HTTPTypes
import Logging
import OpenAPIRuntime
import TollgateStorage

/// Turns every error of an operation into an RFC 9457 problem response: our own `Problem`s as they
/// are, request decoding failures as 400 with the offending field, anything else as a logged 500
/// that reveals nothing.
struct ProblemMiddleware: ServerMiddleware {
    let logger: Logger

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        do {
            return try await next(request, body, metadata)
        } catch {
            let problem = problem(for: error, operationID: operationID)
            var response = HTTPResponse(status: .init(code: problem.status))
            response.headerFields[.contentType] = "application/problem+json"
            return (response, HTTPBody(problem.jsonData))
        }
    }

    func problem(for error: any Error, operationID: String) -> Problem {
        let root = Self.unwrap(error)
        switch root {
        case let problem as Problem:
            return problem
        case let decoding as DecodingError:
            return Self.problem(for: decoding)
        case StorageError.notFound:
            return .notFound("Object")
        case StorageError.invalid(let constraint):
            return .badRequest("A value is out of the allowed range (\(constraint))")
        case StorageError.conflict(let constraint):
            return .conflict("An object with the same unique value already exists (\(constraint))")
        case let convertible as any HTTPResponseConvertible:
            return runtimeProblem(status: convertible.httpStatus.code, description: "\(root)")
        default:
            logger.error("admin operation failed", metadata: [
                "operation": "\(operationID)", "error": "\(String(reflecting: type(of: root)))",
                "request_id": "\(RequestIdentity.current ?? "-")",
            ])
            return .internalError
        }
    }

    /// Errors of the OpenAPI runtime (missing parameters, wrong content type, …) carry a status.
    private func runtimeProblem(status: Int, description: String) -> Problem {
        if status == 415 {
            return Problem(status: 415, type: Problem.base + "unsupported-media-type", title: "Unsupported media type",
                           detail: "Send request bodies as application/json")
        }
        if status < 500 { return .badRequest(description) }
        logger.error("admin runtime error", metadata: ["error": "\(description)"])
        return .internalError
    }

    /// Strips the generated code's wrappers (`ServerError`, `RuntimeError.handlerFailed`, …).
    static func unwrap(_ error: any Error) -> any Error {
        var current = error
        for _ in 0..<8 {
            if let server = current as? ServerError {
                current = server.underlyingError
                continue
            }
            // The runtime's own (internal) RuntimeError wraps handler and middleware errors:
            // .handlerFailed(any Error) / .middlewareFailed(type, any Error).
            let mirror = Mirror(reflecting: current)
            if String(describing: type(of: current)) == "RuntimeError", mirror.displayStyle == .enum,
               let child = mirror.children.first?.value {
                let inner = (child as? any Error)
                    ?? Mirror(reflecting: child).children.compactMap { $0.value as? any Error }.first
                if let inner { current = inner; continue }
            }
            break
        }
        return current
    }

    static func problem(for error: DecodingError) -> Problem {
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return text.isEmpty ? "body" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .field(path(context.codingPath + [key]), "is required")
        case .typeMismatch(let type, let context):
            return .field(path(context.codingPath), "must be \(Self.describe(type))")
        case .valueNotFound(_, let context):
            return .field(path(context.codingPath), "must not be null")
        case .dataCorrupted(let context):
            let description = context.debugDescription
            if description.contains("dditional") || description.contains("not allowed") {
                return .field(path(context.codingPath), "unknown or read-only field: \(description)")
            }
            if context.codingPath.isEmpty {
                return .badRequest("The body is not valid JSON")
            }
            return .field(path(context.codingPath), description)
        @unknown default:
            return .badRequest("The body could not be decoded")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        let name = String(describing: type)
        if name.contains("String") { return "a string" }
        if name.contains("Int") { return "an integer" }
        if name.contains("Bool") { return "a boolean" }
        if name.contains("Array") { return "an array" }
        return "an object"
    }
}

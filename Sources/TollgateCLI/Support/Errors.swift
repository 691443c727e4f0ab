import ArgumentParser
import AsyncHTTPClient
import Foundation
import OpenAPIRuntime
import TollgateAdminAPI

/// The CLI's exit codes. Stable: scripts may rely on them (documented in the README and `tollgate --help`).
public enum CLIExitCode {
    public static let ok: Int32 = 0
    /// Anything else (server error 5xx, unexpected response, local I/O failure).
    public static let failure: Int32 = 1
    /// Usage error or invalid input, locally or from the server (400, 413, 415).
    public static let usage: Int32 = 2
    /// No such object (404).
    public static let notFound: Int32 = 3
    /// Missing, invalid or insufficient admin token (401, 403).
    public static let permissionDenied: Int32 = 4
    /// Conflict: unique value taken, wrong state, idempotency key reused (409, 422).
    public static let conflict: Int32 = 5
    /// The admin API (or database) could not be reached.
    public static let unreachable: Int32 = 6

    static func forHTTPStatus(_ status: Int) -> Int32 {
        switch status {
        case 400, 405, 413, 414, 415, 431: usage
        case 401, 403: permissionDenied
        case 404, 410: notFound
        case 409, 412, 422: conflict
        default: failure
        }
    }
}

/// An error the runner prints on one line (`error: …`) before exiting with `code`.
struct CLIError: Error, CustomStringConvertible {
    var code: Int32
    var message: String

    var description: String { message }

    static func usage(_ message: String) -> CLIError { CLIError(code: CLIExitCode.usage, message: message) }
    static func notFound(_ message: String) -> CLIError { CLIError(code: CLIExitCode.notFound, message: message) }
    static func failure(_ message: String) -> CLIError { CLIError(code: CLIExitCode.failure, message: message) }

    /// A problem document (RFC 9457) from the admin API, on one readable line:
    /// `Invalid fields: budget.amount: '2x' is not a plain decimal … (HTTP 400, request id 9f…)`.
    static func api(status: Int, problem: Components.Schemas.Problem, requestID: String?) -> CLIError {
        var text = problem.title
        let fieldText = (problem.errors ?? []).map { "\($0.field): \($0.message)" }.joined(separator: "; ")
        if let detail = problem.detail, !detail.isEmpty, detail != problem.title {
            text += ": " + detail
        }
        if !fieldText.isEmpty, !(problem.detail ?? "").contains(fieldText) {
            text += " [" + fieldText + "]"
        }
        var suffix = "HTTP \(status)"
        if let requestID { suffix += ", request id \(requestID)" }
        return CLIError(code: CLIExitCode.forHTTPStatus(status), message: oneLine("\(text) (\(suffix))"))
    }
}

func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
}

/// Maps a failure of the generated client to a CLI error. No response at all means the server could
/// not be reached; a response the client could not decode is reported with its status.
func classify(_ error: ClientError, adminURL: String) -> CLIError {
    if let response = error.response {
        let status = response.status.code
        return CLIError(code: status >= 400 ? CLIExitCode.forHTTPStatus(status) : CLIExitCode.failure,
                        message: "Unexpected response from the admin API at \(adminURL): HTTP \(status) (\(oneLine(String(describing: error.underlyingError))))")
    }
    if error.underlyingError is CLIError { return error.underlyingError as! CLIError }
    return CLIError(code: CLIExitCode.unreachable,
                    message: "Cannot reach the admin API at \(adminURL): \(describeTransportError(error.underlyingError))")
}

private func describeTransportError(_ error: any Error) -> String {
    let text = oneLine(String(describing: error))
    let known: [(String, String)] = [
        ("Connection refused", "connection refused"), ("connectTimeout", "connection timed out"),
        ("Network is unreachable", "network unreachable"), ("No route to host", "no route to host"),
        ("getaddrinfo", "host not found"), ("UnknownHost", "host not found"), ("handshake", "TLS handshake failed"),
        ("readTimeout", "no answer in time"), ("deadlineExceeded", "no answer in time"),
        ("remoteConnectionClosed", "the server closed the connection"),
    ]
    for (needle, summary) in known where text.localizedCaseInsensitiveContains(needle) {
        return summary
    }
    return text
}

import NIOCore

/// Status + body for request failures (the mapping from `RequestFailure` to the wire).
enum ErrorResponses {
    static func render(_ failure: RequestFailure, source: [UInt8], style: ValidationErrorStyle) -> (Int, ByteBuffer) {
        switch failure {
        case .validation(let issues):
            return (422, ErrorBodies.validation(issues, source: source, style: style))
        case .badRequest(let message):
            return (400, ErrorBodies.envelope(message: message, type: "invalid_request_error"))
        case .invalidModel(let model):
            return (400, ErrorBodies.invalidModel(model))
        case .notFound(let message):
            return (404, ErrorBodies.envelope(message: message, type: "invalid_request_error"))
        }
    }

    /// A body that is not JSON. The reference does not record this case; the API is FastAPI, whose
    /// answer is a 422 `json_invalid` with the decoder position, or `missing` for an empty body.
    static func invalidJSON(_ error: JSONParseError, source: [UInt8], style: ValidationErrorStyle) -> (Int, ByteBuffer) {
        let isEmpty = source.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        let issue: ValidationIssue
        if isEmpty {
            issue = ValidationIssue(type: "missing", loc: [.key("body")], msg: "Field required", input: .literal("null"))
        } else {
            issue = ValidationIssue(type: "json_invalid", loc: [.key("body"), .index(error.offset)], msg: "JSON decode error",
                                    input: .literal("{}"), ctx: "{\"error\":\(jsonEncodedString(error.message))}")
        }
        return (422, ErrorBodies.validation([issue], source: source, style: style))
    }
}

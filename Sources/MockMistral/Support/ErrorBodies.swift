import NIOCore

/// Error bodies exactly as the real stack sends them (reference §6.2). Two layers answer errors:
/// the Kong gateway (`{"message":…,"request_id":…}`: 401, 502, 504) and the API itself (the flat
/// `{"object":"error",…}` envelope, or FastAPI's `{"detail":[…]}` for validation).
enum ErrorBodies {
    /// `{"object":"error","message":…,"type":…,"param":null,"code":…}` (+ `raw_status_code` when given).
    static func envelope(message: String, type: String, code: String? = nil, rawStatusCode: Int? = nil) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeLiteral("{\"object\":\"error\",\"message\":")
        buffer.writeJSONString(message)
        buffer.writeLiteral(",\"type\":")
        buffer.writeJSONString(type)
        buffer.writeLiteral(",\"param\":null,\"code\":")
        buffer.writeJSONOptionalString(code)
        if let rawStatusCode {
            buffer.writeLiteral(",\"raw_status_code\":")
            buffer.writeJSONInt(rawStatusCode)
        }
        buffer.writeLiteral("}")
        return buffer
    }

    /// Kong's form, used for 401 (observed) and the gateway-generated 502/504.
    /// `requestID` is also sent as `x-kong-request-id`, as Kong does.
    static func gateway(message: String, requestID: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeLiteral("{\"message\":")
        buffer.writeJSONString(message)
        buffer.writeLiteral(",\"request_id\":")
        buffer.writeJSONString(requestID)
        buffer.writeLiteral("}")
        return buffer
    }

    static func unauthorized(requestID: String) -> ByteBuffer { gateway(message: "Unauthorized", requestID: requestID) }

    static func rateLimited() -> ByteBuffer {
        envelope(message: "Rate limit exceeded", type: "rate_limited", code: "1300", rawStatusCode: 429)
    }

    static func serverError(status: Int, requestID: String) -> ByteBuffer {
        switch status {
        case 502: return gateway(message: "An invalid response was received from the upstream server", requestID: requestID)
        case 503: return envelope(message: "Service tier capacity exceeded for this model.", type: "invalid_request_error")
        case 504: return gateway(message: "The upstream server is timing out", requestID: requestID)
        default: return envelope(message: "Internal server error", type: "server_error", code: nil, rawStatusCode: status)
        }
    }

    static func invalidModel(_ model: String) -> ByteBuffer {
        envelope(message: "Invalid model: \(model)", type: "invalid_model", code: "1500", rawStatusCode: 400)
    }

    /// 422 body for validation issues, in either observed style.
    static func validation(_ issues: [ValidationIssue], source: [UInt8], style: ValidationErrorStyle) -> ByteBuffer {
        var buffer = ByteBuffer()
        switch style {
        case .detail:
            writeDetail(issues, source: source, into: &buffer)
        case .wrapped:
            buffer.writeLiteral("{\"object\":\"error\",\"message\":")
            writeDetail(issues, source: source, into: &buffer)
            buffer.writeLiteral(",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}")
        }
        return buffer
    }

    private static func writeDetail(_ issues: [ValidationIssue], source: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeLiteral("{\"detail\":[")
        for (index, issue) in issues.enumerated() {
            if index > 0 { buffer.writeLiteral(",") }
            buffer.writeLiteral("{\"type\":")
            buffer.writeJSONString(issue.type)
            buffer.writeLiteral(",\"loc\":[")
            for (position, component) in issue.loc.enumerated() {
                if position > 0 { buffer.writeLiteral(",") }
                switch component {
                case .key(let key): buffer.writeJSONString(key)
                case .index(let index): buffer.writeJSONInt(index)
                }
            }
            buffer.writeLiteral("],\"msg\":")
            buffer.writeJSONString(issue.msg)
            buffer.writeLiteral(",\"input\":")
            switch issue.input {
            case .value(let value): buffer.writeBytes(source[value.range])
            case .literal(let text): buffer.writeString(text)
            }
            if let ctx = issue.ctx {
                buffer.writeLiteral(",\"ctx\":")
                buffer.writeString(ctx)
            }
            buffer.writeLiteral("}")
        }
        buffer.writeLiteral("]}")
    }
}

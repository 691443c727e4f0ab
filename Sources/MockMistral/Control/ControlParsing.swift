/// Parsing of control API bodies.
enum ControlParsing {
    struct Failure: Error {
        var message: String
    }

    struct Injection {
        var fault: Fault
        var count: Int
        var path: String?
    }

    /// `{"fault":"rate_limited","retry_after_seconds":2,"count":3,"path":"/v1/chat/completions"}`
    /// or an array of such objects. Fault names: rate_limited (retry_after_seconds), server_error
    /// (status), reset_before_headers, disconnect_mid_stream (after_chunks), stream_without_usage,
    /// slow_first_byte (delay_ms), stall_mid_stream (after_chunks, stall_ms).
    static func faults(_ bytes: [UInt8]) throws(Failure) -> [Injection] {
        let root: JSONValue
        do { root = try JSONDocument(bytes: bytes).root } catch { throw Failure(message: "body is not JSON: \(error.message)") }
        let items = root.array ?? [root]
        var injections: [Injection] = []
        for item in items {
            guard let object = item.object, let name = object["fault"]?.string else {
                throw Failure(message: "each fault needs a \"fault\" name")
            }
            let fault: Fault
            switch name {
            case "rate_limited": fault = .rateLimited(retryAfterSeconds: object["retry_after_seconds"]?.integer ?? 1)
            case "server_error":
                let status = object["status"]?.integer ?? 500
                guard (500...599).contains(status) else { throw Failure(message: "server_error status must be 5xx") }
                fault = .serverError(status: status)
            case "reset_before_headers": fault = .resetBeforeHeaders
            case "disconnect_mid_stream": fault = .disconnectMidStream(afterChunks: object["after_chunks"]?.integer ?? 1)
            case "stream_without_usage": fault = .streamWithoutUsage
            case "slow_first_byte": fault = .slowFirstByte(.milliseconds(object["delay_ms"]?.integer ?? 1000))
            case "stall_mid_stream":
                fault = .stallMidStream(afterChunks: object["after_chunks"]?.integer ?? 1,
                                        stall: .milliseconds(object["stall_ms"]?.integer ?? 60_000))
            default: throw Failure(message: "unknown fault \(name)")
            }
            injections.append(Injection(fault: fault, count: object["count"]?.integer ?? 1, path: object["path"]?.string))
        }
        return injections
    }

    /// Partial update: only the fields present change.
    static func configurationChanges(_ bytes: [UInt8]) throws(Failure) -> (inout MockMistralConfiguration) -> Void {
        let object: JSONObject
        do {
            guard let parsed = try JSONDocument(bytes: bytes).root.object else { throw Failure(message: "expected a JSON object") }
            object = parsed
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(message: "body is not JSON")
        }
        var style: ValidationErrorStyle?
        if let name = object["validation_error_style"]?.string {
            guard let parsed = ValidationErrorStyle(rawValue: name) else { throw Failure(message: "validation_error_style is detail or wrapped") }
            style = parsed
        }
        let latency = object["latency_ms"]?.integer
        let chunkDelay = object["chunk_delay_ms"]?.integer
        let completionTokens = object["completion_tokens"]?.integer
        let tokensPerChunk = object["tokens_per_chunk"]?.integer
        let keys = object["accepted_keys"]?.array?.compactMap(\.string)
        let rejectUnknown = object["reject_unknown_models"]?.bool
        let padding = object["stream_padding"]?.bool
        let capacity = object["request_log_capacity"]?.integer
        return { configuration in
            if let latency { configuration.latency = .milliseconds(latency) }
            if let chunkDelay { configuration.streamChunkDelay = .milliseconds(chunkDelay) }
            if let completionTokens { configuration.completionTokens = completionTokens }
            if let tokensPerChunk { configuration.tokensPerChunk = tokensPerChunk }
            if let keys { configuration.acceptedKeys = Set(keys) }
            if let style { configuration.validationErrorStyle = style }
            if let rejectUnknown { configuration.rejectUnknownModels = rejectUnknown }
            if let padding { configuration.streamPadding = padding }
            if let capacity { configuration.requestLogCapacity = capacity }
        }
    }
}

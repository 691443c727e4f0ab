import HTTPTypes
import NIOCore

/// JSON renderings for the control API (snake_case, like the API it imitates).
enum ControlJSON {
    static func error(_ message: String) -> String { "{\"error\":\(jsonEncodedString(message))}" }

    static func requests(_ entries: [RecordedRequest]) -> String {
        var buffer = ByteBuffer()
        buffer.writeLiteral("{\"object\":\"list\",\"data\":[")
        for (index, entry) in entries.enumerated() {
            if index > 0 { buffer.writeLiteral(",") }
            write(entry, into: &buffer)
        }
        buffer.writeLiteral("]}")
        return String(buffer: buffer)
    }

    /// Headers as an object keyed by lowercase name (repeated headers joined with ", ", the HTTP
    /// rule for combining them) plus the raw ordered list for tests that care about duplicates.
    private static func write(_ entry: RecordedRequest, into buffer: inout ByteBuffer) {
        buffer.writeLiteral("{\"sequence\":")
        buffer.writeJSONInt(entry.sequence)
        buffer.writeLiteral(",\"received_at\":")
        buffer.writeString(String(entry.receivedAt))
        buffer.writeLiteral(",\"method\":")
        buffer.writeJSONString(entry.method.rawValue)
        buffer.writeLiteral(",\"path\":")
        buffer.writeJSONString(entry.path)
        buffer.writeLiteral(",\"query\":")
        buffer.writeJSONOptionalString(entry.query)
        buffer.writeLiteral(",\"api_key\":")
        buffer.writeJSONOptionalString(entry.apiKey)
        buffer.writeLiteral(",\"headers\":{")
        var combined: [(String, String)] = []
        for field in entry.headers {
            let name = field.name.canonicalName
            if let index = combined.firstIndex(where: { $0.0 == name }) {
                combined[index].1 += ", " + field.value
            } else {
                combined.append((name, field.value))
            }
        }
        for (index, (name, value)) in combined.enumerated() {
            if index > 0 { buffer.writeLiteral(",") }
            buffer.writeJSONString(name)
            buffer.writeLiteral(":")
            buffer.writeJSONString(value)
        }
        buffer.writeLiteral("},\"header_list\":[")
        for (index, field) in entry.headers.enumerated() {
            if index > 0 { buffer.writeLiteral(",") }
            buffer.writeLiteral("[")
            buffer.writeJSONString(field.name.rawName)
            buffer.writeLiteral(",")
            buffer.writeJSONString(field.value)
            buffer.writeLiteral("]")
        }
        buffer.writeLiteral("],\"body\":")
        buffer.writeJSONString(entry.bodyText)
        buffer.writeLiteral(",\"body_bytes\":")
        buffer.writeJSONInt(entry.body.readableBytes)
        buffer.writeLiteral(",\"status\":")
        if let status = entry.status { buffer.writeJSONInt(status) } else { buffer.writeLiteral("null") }
        buffer.writeLiteral(",\"fault\":")
        buffer.writeJSONOptionalString(entry.fault?.name)
        buffer.writeLiteral(",\"streamed\":")
        buffer.writeJSONBool(entry.streamed)
        buffer.writeLiteral(",\"usage\":")
        if let usage = entry.usage { buffer.writeString(self.usage(usage)) } else { buffer.writeLiteral("null") }
        buffer.writeLiteral("}")
    }

    static func usage(_ usage: MockUsage?) -> String {
        guard let usage else { return "{\"usage\":null}" }
        var text = "{\"prompt_tokens\":\(usage.promptTokens),\"completion_tokens\":\(usage.completionTokens),\"total_tokens\":\(usage.totalTokens),\"cached_tokens\":\(usage.cachedTokens)"
        if let pages = usage.pagesProcessed { text += ",\"pages_processed\":\(pages)" }
        return text + "}"
    }

    static func stats(_ stats: MockStats) -> String {
        let routes = stats.requestsByRoute.sorted { $0.key < $1.key }
            .map { "\(jsonEncodedString($0.key)):\($0.value)" }.joined(separator: ",")
        let statuses = stats.requestsByStatus.sorted { $0.key < $1.key }
            .map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
        return """
        {"requests_total":\(stats.requestsTotal),"requests_by_route":{\(routes)},"requests_by_status":{\(statuses)},\
        "faults_applied":\(stats.faultsApplied),"streams_started":\(stats.streamsStarted),\
        "streams_completed":\(stats.streamsCompleted),"prompt_tokens":\(stats.promptTokens),\
        "completion_tokens":\(stats.completionTokens)}
        """
    }

    static func faults(_ pending: [PendingFault]) -> String {
        let items = pending.map { fault -> String in
            var text = "{\"fault\":\(jsonEncodedString(fault.fault.name)),\"remaining\":\(fault.remaining),\"path\":"
            text += fault.path.map(jsonEncodedString) ?? "null"
            switch fault.fault {
            case .rateLimited(let seconds): text += ",\"retry_after_seconds\":\(seconds)"
            case .serverError(let status): text += ",\"status\":\(status)"
            case .disconnectMidStream(let chunks): text += ",\"after_chunks\":\(chunks)"
            case .slowFirstByte(let delay): text += ",\"delay_ms\":\(delay.milliseconds)"
            case .stallMidStream(let chunks, let stall): text += ",\"after_chunks\":\(chunks),\"stall_ms\":\(stall.milliseconds)"
            case .resetBeforeHeaders, .streamWithoutUsage: break
            }
            return text + "}"
        }
        return "{\"object\":\"list\",\"data\":[\(items.joined(separator: ","))]}"
    }

    static func configuration(_ configuration: MockMistralConfiguration) -> String {
        let keys = configuration.acceptedKeys.sorted().map(jsonEncodedString).joined(separator: ",")
        return """
        {"accepted_keys":[\(keys)],"latency_ms":\(configuration.latency.milliseconds),\
        "chunk_delay_ms":\(configuration.streamChunkDelay.milliseconds),\
        "completion_tokens":\(configuration.completionTokens),"tokens_per_chunk":\(configuration.tokensPerChunk),\
        "validation_error_style":"\(configuration.validationErrorStyle.rawValue)",\
        "reject_unknown_models":\(configuration.rejectUnknownModels),"stream_padding":\(configuration.streamPadding),\
        "request_log_capacity":\(configuration.requestLogCapacity),"max_body_bytes":\(configuration.maxBodyBytes)}
        """
    }
}

extension Duration {
    /// Whole milliseconds (for headers and the control API).
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

import Hummingbird
import NIOCore

/// Writes a `StreamScript` as the response body, applying the pace and the stream faults.
enum StreamWriter {
    static func write(_ script: StreamScript, pace: Duration, fault: Fault?, channel: any Channel,
                      writer: inout any ResponseBodyWriter) async throws {
        let ending = fault == .streamWithoutUsage ? script.endingWithoutUsage : script.ending
        let parts = script.events + ending
        var cutAfter: Int?
        if case .disconnectMidStream(let count)? = fault { cutAfter = max(0, count) }
        let sendCount = min(parts.count, cutAfter ?? parts.count)

        if pace <= .zero {
            // No pacing: hand everything to NIO at once (one flush), still one HTTP chunk per event.
            if sendCount > 0 { try await writer.write(contentsOf: parts[0..<sendCount]) }
        } else {
            for index in 0..<sendCount {
                if index > 0 { try await Task.sleep(for: pace) }
                try await writer.write(parts[index])
            }
        }
        if cutAfter != nil {
            await ConnectionFaults.disconnect(channel)
            throw MockConnectionDropped()
        }
        try await writer.finish(nil)
    }
}

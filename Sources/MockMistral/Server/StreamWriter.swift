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

        if case .stallMidStream(let count, let stall)? = fault {
            let first = min(max(0, count), sendCount)
            // Watch for the client hanging up before anything is sent, so the hang-up cannot be missed.
            let watcher = HangUpWatcher(promise: channel.eventLoop.makePromise())
            try? await channel.pipeline.addHandler(watcher, position: .first).get()
            try await send(parts[0..<first], pace: pace, writer: &writer)
            let hungUp = await pause(stall, until: watcher.hungUp)
            try? await channel.pipeline.removeHandler(watcher).get()
            if hungUp {
                // The client is gone: nothing more is sent, and the stream does not count as completed.
                await ConnectionFaults.disconnect(channel)
                throw MockConnectionDropped()
            }
            try await send(parts[first..<sendCount], pace: pace, writer: &writer, pacedFromStart: first == 0)
        } else if pace <= .zero {
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

    /// Writes `parts`, `pace` apart (and `pace` before the first unless it starts the stream).
    private static func send(_ parts: ArraySlice<ByteBuffer>, pace: Duration, writer: inout any ResponseBodyWriter,
                             pacedFromStart: Bool = true) async throws {
        guard !parts.isEmpty else { return }
        if pace <= .zero {
            try await writer.write(contentsOf: parts)
            return
        }
        for (offset, part) in parts.enumerated() {
            if offset > 0 || !pacedFromStart { try await Task.sleep(for: pace) }
            try await writer.write(part)
        }
    }

    /// Sleeps for `duration`, or less if the client hangs up meanwhile (so a long stall never
    /// outlives its client, nor delays the mock's shutdown).
    /// Returns true if the client hung up.
    private static func pause(_ duration: Duration, until hungUp: EventLoopPromise<Void>) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                try? await Task.sleep(for: duration)
                hungUp.succeed()  // a future cannot be cancelled: end the other wait (a no-op if it is over)
                return false
            }
            group.addTask {
                try? await hungUp.futureResult.get()
                return true
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}

/// Fulfils its promise when the client closes its side of the connection. Hummingbird allows
/// remote half-closure, so a client's FIN leaves the channel active: `inputClosed` is the signal.
private final class HangUpWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    let hungUp: EventLoopPromise<Void>

    init(promise: EventLoopPromise<Void>) { self.hungUp = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { hungUp.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        hungUp.succeed()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        hungUp.succeed()
    }
}

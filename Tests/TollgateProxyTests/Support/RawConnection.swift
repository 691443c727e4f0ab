import Foundation
import NIOCore
import NIOConcurrencyHelpers
import NIOPosix

/// A bare TCP connection to a server under test: bytes go out exactly as written (half a request
/// head, a trickled body), and what comes back and whether the server closed are recorded.
final class RawConnection: Sendable {
    private let channel: any Channel
    private let collector: Collector

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    static func open(port: Int) async throws -> RawConnection {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector.Handler(collector))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, collector: collector)
    }

    /// Writes `text` now; false if the connection is closed.
    @discardableResult
    func send(_ text: String) async -> Bool {
        do {
            try await channel.writeAndFlush(ByteBuffer(string: text)).get()
            return true
        } catch {
            return false
        }
    }

    /// Sends `text` one byte every `interval` until all is sent or the server closes; returns how
    /// many bytes went out.
    @discardableResult
    func trickle(_ text: String, every interval: Duration) async -> Int {
        var sent = 0
        for byte in text.utf8 {
            guard isOpen, await send(String(decoding: [byte], as: UTF8.self)) else { break }
            sent += 1
            try? await Task.sleep(for: interval)
        }
        return sent
    }

    var isOpen: Bool { channel.isActive }

    /// Everything received so far.
    var received: String { collector.text }

    /// Waits until the server has closed the connection, at most `limit`; true if it did.
    func closed(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while channel.isActive, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !channel.isActive
    }

    /// Waits until the received text contains `marker`, at most `limit`.
    func receive(_ marker: String, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while !received.contains(marker), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return received.contains(marker)
    }

    func close() async {
        try? await channel.close()
    }

    private final class Collector: Sendable {
        private let bytes = NIOLockedValueBox(ByteBuffer())
        var text: String { bytes.withLockedValue { String(buffer: $0) } }

        final class Handler: ChannelInboundHandler {
            typealias InboundIn = ByteBuffer
            let collector: Collector
            init(_ collector: Collector) { self.collector = collector }

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                var buffer = unwrapInboundIn(data)
                collector.bytes.withLockedValue { $0.writeBuffer(&buffer) }
            }
        }
    }
}

import Foundation
import NIOCore
import Testing
@testable import TollgateProxy

/// The stream relay's read-ahead: everything arrives, in order, merged when it piled up; silence
/// from upstream cuts the stream after what was received; a slow relay is not silence; a relay
/// that goes away cancels the upstream read. Time bounds are loose (the parallel suite can starve
/// threads for seconds) and only in the safe direction.
@Suite("Stream pump")
struct StreamPumpTests {
    struct Marker: Error, Equatable { let name: String }

    typealias Upstream = AsyncThrowingStream<ByteBuffer, any Error>

    /// An upstream body the test feeds by hand, and whether its reader cancelled it.
    final class Source: @unchecked Sendable {
        let stream: Upstream
        let feed: Upstream.Continuation
        private let lock = NSLock()
        private var cancelledFlag = false

        init() {
            (stream, feed) = Upstream.makeStream(bufferingPolicy: .unbounded)
            feed.onTermination = { [self] termination in
                if case .cancelled = termination {
                    lock.lock()
                    cancelledFlag = true
                    lock.unlock()
                }
            }
        }

        var cancelled: Bool {
            lock.lock()
            defer { lock.unlock() }
            return cancelledFlag
        }

        func send(_ text: String) { feed.yield(ByteBuffer(string: text)) }
    }

    static func pump(_ source: Source, idle: Duration = .seconds(30), highWater: Int = 256 * 1024) -> StreamPump<Upstream> {
        StreamPump(base: source.stream, idleTimeout: idle, highWater: highWater, stalledError: Marker(name: "stalled"))
    }

    static func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<1000 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func deliversEverythingInOrderThenEnds() async throws {
        let source = Source()
        let pump = Self.pump(source)
        let sent = (0..<200).map { "event \($0);" }
        let producer = Task {
            for (index, text) in sent.enumerated() {
                source.send(text)
                if index % 7 == 0 { await Task.yield() }
            }
            source.feed.finish()
        }
        var received = ""
        while let chunk = try await pump.next() { received += String(buffer: chunk) }
        await producer.value
        #expect(received == sent.joined())
        #expect(try await pump.next() == nil, "stays ended")
    }

    @Test func whatPiledUpWhileTheRelayWasBusyComesAsOneBuffer() async throws {
        let source = Source()
        let pump = Self.pump(source)
        source.send("first;")
        #expect(try await pump.next().map { String(buffer: $0) } == "first;")
        for index in 1...9 { source.send("e\(index);") }
        #expect(await Self.eventually { pump.bufferedChunkCount == 9 }, "the reader reads ahead")
        let merged = try await pump.next()
        #expect(merged.map { String(buffer: $0) } == (1...9).map { "e\($0);" }.joined())
        source.feed.finish()
        #expect(try await pump.next() == nil)
    }

    @Test func silenceCutsTheStreamAfterWhatArrived() async throws {
        let source = Source()
        let pump = Self.pump(source, idle: .milliseconds(200))
        source.send("data: one\n\n")
        let started = ContinuousClock.now
        #expect(try await pump.next().map { String(buffer: $0) } == "data: one\n\n")
        await #expect(throws: Marker(name: "stalled")) { try await pump.next() }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(190), "not before the idle timeout")
        #expect(elapsed < .seconds(20), "cut by the idle timer")
        #expect(await Self.eventually { source.cancelled }, "the upstream read is cancelled")
    }

    @Test func aSlowRelayIsNotSilence() async throws {
        let source = Source()
        // Two chunks fill the buffer: the reader then waits for the relay, which takes longer
        // than the idle timeout each time; that wait must not count as upstream silence.
        let pump = Self.pump(source, idle: .seconds(1), highWater: 8)
        let sent = (0..<4).map { "ev\($0);" }
        for text in sent { source.send(text) }
        source.feed.finish()
        var received = ""
        while let chunk = try await pump.next() {
            received += String(buffer: chunk)
            try await Task.sleep(for: .milliseconds(1500))
        }
        #expect(received == sent.joined())
        #expect(!source.cancelled)
    }

    @Test func upstreamErrorsComeAfterTheDataBeforeThem() async throws {
        let source = Source()
        let pump = Self.pump(source)
        source.send("ab")
        source.send("cd")
        source.feed.finish(throwing: Marker(name: "reset"))
        var received = ""
        await #expect(throws: Marker(name: "reset")) {
            while let chunk = try await pump.next() { received += String(buffer: chunk) }
        }
        #expect(received == "abcd")
    }

    @Test func aRelayThatGoesAwayCancelsTheUpstreamRead() async throws {
        let source = Source()
        let pump = Self.pump(source)
        source.send("x")
        _ = try await pump.next()
        let waiting = Task { try await pump.next() }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(await Self.eventually { source.cancelled })
    }

    @Test func closingStopsTheReader() async throws {
        let source = Source()
        let pump = Self.pump(source)
        source.send("x")
        _ = try await pump.next()
        pump.close()
        #expect(await Self.eventually { source.cancelled })
        await #expect(throws: CancellationError.self) { try await pump.next() }
    }
}

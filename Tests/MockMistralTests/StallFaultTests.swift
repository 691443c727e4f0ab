import AsyncHTTPClient
import Foundation
import MockMistral
import NIOCore
import Testing

/// `Fault.stallMidStream`: a stream that goes quiet mid-way with its connection still open, what an
/// upstream idle-between-chunks timer has to catch.
@Suite struct StallFaultTests {
    @Test func stallMidStreamPausesAfterNEventsThenFinishesNormally() async throws {
        try await withMock { (mock, http) async throws in
            mock.inject(.stallMidStream(afterChunks: 3, stall: .seconds(1)))
            // A non-streaming request does not consume a stream fault.
            #expect(try await http.post("/v1/chat/completions", Bodies.chat()).status == 200)
            #expect(mock.pendingFaults.count == 1)

            var request = HTTPClientRequest(url: http.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(MockHTTP.defaultKey)")
            request.body = .bytes(ByteBuffer(string: Bodies.chat(extra: #""stream":true"#)))
            let clock = ContinuousClock()
            let started = clock.now
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            var received = ""
            var arrivals: [ContinuousClock.Instant] = []  // when each complete event arrived
            for try await chunk in response.body {
                received += String(buffer: chunk)
                let now = clock.now
                while arrivals.count < sseEvents(received).count - (received.hasSuffix("\n\n") ? 0 : 1) { arrivals.append(now) }
            }
            #expect(received.hasSuffix("data: [DONE]\n\n"))
            #expect(received.contains("\"usage\""))
            let events = sseEvents(received).count
            #expect(arrivals.count == events)
            // The pause came after exactly three events: the fourth arrived at least the stall after
            // the request (a lower bound, which load cannot break), and the gap before it is most
            // of the stall. (Not "the longest gap": under a parallel suite's load this reader once
            // paused for longer than the stall itself, later in the stream.)
            try #require(events > 4)
            #expect(arrivals[3] - started >= .seconds(1))
            let gaps = (1..<arrivals.count).map { arrivals[$0] - arrivals[$0 - 1] }
            #expect(gaps[2] >= .milliseconds(900), "the stall is between event 3 and event 4: gaps \(gaps)")
            #expect(mock.requestLog.last?.fault == .stallMidStream(afterChunks: 3, stall: .seconds(1)))
            #expect(mock.stats.streamsCompleted == 1)
        }
    }

    /// A stall far longer than the test ends as soon as the client hangs up: it neither keeps
    /// writing to a dead connection nor holds up the mock's shutdown.
    @Test func stallEndsWhenTheClientHangsUp() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        try await withMock { (mock, http) async throws in
            mock.inject(.stallMidStream(afterChunks: 2, stall: .seconds(120)))
            var request = HTTPClientRequest(url: http.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(MockHTTP.defaultKey)")
            request.body = .bytes(ByteBuffer(string: Bodies.chat(extra: #""stream":true"#)))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            var received = ""
            for try await chunk in response.body {
                received += String(buffer: chunk)
                if sseEvents(received).count >= 2 { break }  // hang up during the stall
            }
            #expect(sseEvents(received).count == 2)
            #expect(mock.stats.streamsCompleted == 0)
        }
        // Shutting the mock down waited for the stalled response; without the early end it would
        // have taken two minutes.
        #expect(clock.now - started < .seconds(60))
    }

    @Test func stallMidStreamOverTheControlAPI() async throws {
        try await withMock { (mock, http) async throws in
            let injected = try await http.post("/_mock/faults", #"{"fault":"stall_mid_stream","after_chunks":4,"stall_ms":250}"#, key: nil)
            #expect(injected.status == 201)
            let listed = try injected.json.array("data")?.first
            #expect(listed?.string("fault") == "stall_mid_stream")
            #expect(listed?.int("after_chunks") == 4)
            #expect(listed?.int("stall_ms") == 250)
            #expect(mock.pendingFaults.map(\.fault) == [.stallMidStream(afterChunks: 4, stall: .milliseconds(250))])
        }
    }
}

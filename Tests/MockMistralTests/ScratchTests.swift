import MockMistral
import Testing
import Foundation

@Suite struct ScratchTests {
    @Test func scratch() async throws {
        let mock = MockMistral()
        let server = try await mock.start()
        let response = try await MockHTTP(baseURL: server.baseURL).get("/v1/models")
        #expect(response.status == 200)
        let clock = ContinuousClock()
        var t = clock.now
        await server.stop()
        print("stop took", clock.now - t)
        t = clock.now
        do {
            let outcome = try await RawHTTP.exchange(baseURL: server.baseURL, request: "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
            print("raw outcome", outcome.received.count, outcome.reset)
        } catch { print("raw error", error) }
        print("raw took", clock.now - t)
        t = clock.now
        do { _ = try await MockHTTP(baseURL: server.baseURL).send(.GET, "/v1/models", timeout: .seconds(2)) } catch { print("ahc error", error) }
        print("ahc took", clock.now - t)
    }
}

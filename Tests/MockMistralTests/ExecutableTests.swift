import Foundation
import Testing

/// The `tollgate-mock-mistral` executable as scripts use it: start with `--port 0`, parse the one
/// line it prints, talk to it, stop it with SIGTERM.
@Suite struct ExecutableTests {
    /// `swift build --build-tests` and `swift test` build the executable next to the test bundle.
    static let binary: String? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tollgate-mock-mistral").path,
            root.appendingPathComponent(".build/debug/tollgate-mock-mistral").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    @Test(.enabled(if: binary != nil, "executable not built"), .timeLimit(.minutes(1)))
    func printsTheListeningLineAndHonoursFlags() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.binary))
        process.arguments = ["--port", "0", "--quiet", "--accept-key", "sk-a", "--accept-key", "sk-b",
                             "--latency-ms", "30", "--chunk-delay-ms", "2", "--completion-tokens", "3"]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.interrupt() } }

        let line = try await Task.detached { () throws -> String in
            var data = Data()
            while !data.contains(UInt8(ascii: "\n")) {
                let chunk = stdout.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                data.append(chunk)
            }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }.value
        let prefix = "mock-mistral listening on http://127.0.0.1:"
        #expect(line.hasPrefix(prefix))
        let port = try #require(Int(line.dropFirst(prefix.count)))
        #expect(port > 0)

        let http = MockHTTP(baseURL: "http://127.0.0.1:\(port)")
        #expect(try await http.post("/v1/chat/completions", Bodies.chat(), key: "sk-c").status == 401)
        let ok = try await http.post("/v1/chat/completions", Bodies.chat(), key: "sk-b")
        #expect(ok.status == 200)
        #expect(try ok.json.object("usage")?.int("completion_tokens") == 3)
        let config = try await http.get("/_mock/config", key: nil).json
        #expect(config.int("latency_ms") == 30)
        #expect(config.int("chunk_delay_ms") == 2)
        #expect(config["accepted_keys"] as? [String] == ["sk-a", "sk-b"])

        process.terminate()  // SIGTERM: graceful shutdown
        // Polled rather than waitUntilExit(), which would hold one of the few threads every
        // parallel test runs on (a detached task runs on them too).
        for _ in 0..<500 where process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        try #require(!process.isRunning, "the mock did not exit within 10 s of SIGTERM")
        let status = process.terminationStatus
        #expect(status == 0)
    }
}

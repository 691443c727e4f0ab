import Foundation
import Logging

/// Collects every log line of an app under test, so tests can scan them for secrets.
public final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    public init() {}

    public func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    public var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }

    /// A logger at `level` that records into this capture.
    public func logger(label: String = "test", level: Logger.Level = .trace) -> Logger {
        Logger(label: label) { _ in CapturingHandler(capture: self, logLevel: level) }
    }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level
        init(capture: LogCapture, logLevel: Logger.Level) { self.capture = capture; self.logLevel = logLevel }
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] } set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            capture.append("\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })")
        }
    }
}

import Foundation
import Logging

/// One JSON object per line on stderr: `{"ts":…,"level":…,"label":…,"msg":…,<metadata>}`.
/// Log aggregators parse it without regexes. Callers never pass secrets as metadata (the code
/// logs ids and display prefixes only); this handler does not try to guess what is secret.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private static let lock = NSLock()

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = "\(value)"
        }
        object["ts"] = Self.timestamp()
        object["level"] = event.level.rawValue
        object["label"] = label
        object["msg"] = event.message.description
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(0x0A)
        Self.lock.lock()
        FileHandle.standardError.write(data)
        Self.lock.unlock()
    }

    private static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }

    /// `LOG_FORMAT=json` (default) or `text`, `LOG_LEVEL` (default info), for the executables.
    public static func bootstrap(environment: [String: String]) {
        let level = Logger.Level(rawValue: environment["LOG_LEVEL"] ?? "info") ?? .info
        let text = environment["LOG_FORMAT"]?.lowercased() == "text"
        LoggingSystem.bootstrap { label in
            if text {
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            return JSONLogHandler(label: label, level: level)
        }
    }
}

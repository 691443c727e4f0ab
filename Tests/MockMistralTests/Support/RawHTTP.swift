#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking raw TCP exchange, to observe what HTTP clients hide: whether the peer closed the
/// connection with a reset (RST → ECONNRESET) or an orderly EOF.
enum RawHTTP {
    struct Outcome: Sendable {
        var received: [UInt8]
        var reset: Bool
    }

    struct Failure: Error { var step: String; var code: Int32 }

    static func exchange(baseURL: String, request: String) async throws -> Outcome {
        let port = UInt16(baseURL.split(separator: ":").last.flatMap { Int($0) } ?? 0)
        return try await Task.detached { try blockingExchange(port: port, request: request) }.value
    }

    private static func blockingExchange(port: UInt16, request: String) throws -> Outcome {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure(step: "socket", code: errno) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(step: "connect", code: errno) }
        let bytes = Array(request.utf8)
        guard send(fd, bytes, bytes.count, 0) == bytes.count else { throw Failure(step: "send", code: errno) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { received += buffer[0..<count]; continue }
            if count == 0 { return Outcome(received: received, reset: false) }
            if errno == ECONNRESET { return Outcome(received: received, reset: true) }
            throw Failure(step: "recv", code: errno)
        }
    }
}

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension UUID {
    /// A random (version 4) UUID from the system generator (`getrandom`, no file descriptor).
    ///
    /// Every id Tollgate mints comes from here, never from Foundation's `UUID()`: on Linux that opens
    /// /dev/urandom on each call and, when the process is out of file descriptors (a connection
    /// flood), silently returns the same id every time, 00000000-0000-4000-8000-000000000000
    /// (seen in the test suite under `ulimit -n 1024`: primary-key conflicts on new keys, tokens and
    /// holds). It is also three syscalls per call on the proxy's hot path instead of one.
    public static func random() -> UUID {
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { IDEntropy.shared.take(into: $0) }
        bytes.6 = (bytes.6 & 0x0F) | 0x40   // version 4
        bytes.8 = (bytes.8 & 0x3F) | 0x80   // RFC 4122 variant
        return UUID(uuid: bytes)
    }

    /// The canonical lowercase text form (8-4-4-4-12 hex digits), as the API prints ids.
    /// Written directly: Foundation's `uuidString` goes through `sprintf` and then needs
    /// `lowercased()`, a few percent of the proxy's CPU per request with ids in several headers.
    public var lowercasedString: String {
        String(unsafeUninitializedCapacity: 36) { out in
            let digits: StaticString = "0123456789abcdef"
            withUnsafeBytes(of: uuid) { bytes in
                var position = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        out[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    out[position] = digits.utf8Start[Int(byte >> 4)]
                    out[position + 1] = digits.utf8Start[Int(byte & 0x0F)]
                    position += 2
                }
            }
            return 36
        }
    }
}

/// Random bytes for ids, drawn from the system generator 4 KiB at a time: one `getrandom` per 256
/// ids instead of two per id (the proxy mints two ids per request). Ids are not secrets (they
/// appear in headers and logs) but must never repeat; secrets are generated elsewhere, each
/// straight from the system generator.
final class IDEntropy: @unchecked Sendable {
    static let shared = IDEntropy()
    private static let size = 4096
    private let lock = NSLock()
    private var buffer = [UInt8](repeating: 0, count: IDEntropy.size)
    private var used = IDEntropy.size

    func take(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count <= Self.size)
        lock.lock()
        defer { lock.unlock() }
        if used + out.count > Self.size {
            buffer.withUnsafeMutableBytes { Self.fillFromSystem($0) }
            used = 0
        }
        buffer.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[used..<used + out.count])) }
        // Handed-out bytes do not stay behind in memory.
        buffer.withUnsafeMutableBytes { $0[used..<used + out.count].initializeMemory(as: UInt8.self, repeating: 0) }
        used += out.count
    }

    private static func fillFromSystem(_ buffer: UnsafeMutableRawBufferPointer) {
        // arc4random_buf: the kernel's generator (getrandom on Linux), never a file descriptor.
        arc4random_buf(buffer.baseAddress!, buffer.count)
    }
}

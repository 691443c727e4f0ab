import Foundation

extension UUID {
    /// A random (version 4) UUID from the system generator (`getrandom`, no file descriptor).
    ///
    /// Every id Tollgate mints comes from here, never from Foundation's `UUID()`: on Linux that opens
    /// /dev/urandom on each call and, when the process is out of file descriptors (a connection
    /// flood), silently returns the same id every time, 00000000-0000-4000-8000-000000000000
    /// (seen in the test suite under `ulimit -n 1024`: primary-key conflicts on new keys, tokens and
    /// holds). It is also three syscalls per call on the proxy's hot path instead of one.
    public static func random() -> UUID {
        var generator = SystemRandomNumberGenerator()
        var high = generator.next() as UInt64
        var low = generator.next() as UInt64
        high = (high & ~0xF000) | 0x4000                             // version 4
        low = (low & ~(0xC000_0000_0000_0000 as UInt64)) | 0x8000_0000_0000_0000   // RFC 4122 variant
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { out in
            withUnsafeBytes(of: high.bigEndian) { out.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 8) }
            withUnsafeBytes(of: low.bigEndian) { (out.baseAddress! + 8).copyMemory(from: $0.baseAddress!, byteCount: 8) }
        }
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

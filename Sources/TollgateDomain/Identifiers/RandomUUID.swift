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
        let h = withUnsafeBytes(of: high.bigEndian) { Array($0) }
        let l = withUnsafeBytes(of: low.bigEndian) { Array($0) }
        return UUID(uuid: (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]))
    }
}

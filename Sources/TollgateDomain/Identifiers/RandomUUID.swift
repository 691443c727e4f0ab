import Crypto
import Foundation

extension UUID {
    /// A random (version 4) UUID from a cryptographic generator that needs no file descriptor.
    ///
    /// Every id Tollgate mints comes from here, never from Foundation's `UUID()`: on Linux that opens
    /// /dev/urandom on each call and, when the process is out of file descriptors (a connection
    /// flood), silently returns the same id every time, 00000000-0000-4000-8000-000000000000
    /// (seen in the test suite under `ulimit -n 1024`: primary-key conflicts on new keys, tokens and
    /// holds). The bytes come from `IDEntropy`, a buffer refilled 4 KiB at a time.
    public static func random() -> UUID {
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { IDEntropy.shared.take(into: $0) }
        bytes.6 = (bytes.6 & 0x0F) | 0x40   // version 4
        bytes.8 = (bytes.8 & 0x3F) | 0x80   // RFC 4122 variant
        return UUID(uuid: bytes)
    }

    /// A time-ordered (version 7, RFC 9562) UUID: the Unix time in milliseconds in its first 48
    /// bits, then 74 random bits from `IDEntropy`.
    ///
    /// For ids that become keys of append-mostly indexes: request ids are the usage ledger's
    /// primary key, where random ids put every insert on a random page of an index that grows by
    /// millions of rows a month (a cache miss each, and after every checkpoint a full-page image
    /// in the WAL for each page first touched); ids in time order append to the index's last pages.
    /// They also sort by when the request arrived. They do reveal that time, which a request id's
    /// holder knows anyway.
    public static func timeOrdered(milliseconds: UInt64 = UInt64(max(0, Date().timeIntervalSince1970 * 1000))) -> UUID {
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { raw in
            IDEntropy.shared.take(into: UnsafeMutableRawBufferPointer(rebasing: raw[6...]))
            for i in 0..<6 { raw[i] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - i))) }
        }
        bytes.6 = (bytes.6 & 0x0F) | 0x70   // version 7
        bytes.8 = (bytes.8 & 0x3F) | 0x80   // RFC 4122 variant
        return UUID(uuid: bytes)
    }

    /// The canonical lowercase text form (8-4-4-4-12 hex digits), as the API prints ids.
    /// Written directly: Foundation's `uuidString` goes through `sprintf` and then needs
    /// `lowercased()`, a few percent of the proxy's CPU per request with ids in several headers.
    public var apiString: String {
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

/// Random bytes for ids, drawn 4 KiB at a time: one refill per 256 ids instead of two `getrandom`
/// calls per id (the proxy mints two ids per request). Ids are not secrets (they appear in headers
/// and logs) but must never repeat; secrets are generated elsewhere, straight from the system.
///
/// A refill is ChaCha20's keystream under a key drawn once from the system generator, with a
/// counter as the nonce: the same construction as the kernel's and BoringSSL's own generators, and
/// portable (glibc's `arc4random_buf` needs 2.36; swift-crypto's `SymmetricKey(size:)` reads the
/// system generator 8 bytes at a time).
final class IDEntropy: @unchecked Sendable {
    static let shared = IDEntropy()
    private static let size = 4096
    private static let zeros = [UInt8](repeating: 0, count: IDEntropy.size)
    private let key = SymmetricKey(size: .bits256)
    private let lock = NSLock()
    private var refills: UInt64 = 0
    private var buffer = [UInt8](repeating: 0, count: IDEntropy.size)
    private var used = IDEntropy.size

    func take(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count <= Self.size)
        lock.lock()
        defer { lock.unlock() }
        if used + out.count > Self.size {
            refill()
            used = 0
        }
        buffer.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[used..<used + out.count])) }
        used += out.count
    }

    /// The next 4 KiB of keystream: zeros sealed under a nonce never used before with this key.
    private func refill() {
        refills += 1
        var nonce = [UInt8](repeating: 0, count: 12)
        withUnsafeBytes(of: refills.littleEndian) { nonce.replaceSubrange(0..<8, with: $0) }
        // Cannot fail: a 12-byte nonce and a 256-bit key are what ChaChaPoly takes.
        let sealed = try! ChaChaPoly.seal(Self.zeros, using: key, nonce: ChaChaPoly.Nonce(data: nonce))
        buffer = Array(sealed.ciphertext)
    }
}

import Foundation
import Testing
@testable import TollgateDomain

@Suite("Random UUIDs")
struct RandomUUIDTests {
    /// Version 4, RFC 4122 variant, as Mistral's and our ledger's ids are; and not repeating.
    @Test func randomIDsAreVersion4AndDistinct() {
        var seen = Set<UUID>()
        for _ in 0..<10_000 {
            let id = UUID.random()
            let text = id.uuidString.lowercased()
            let characters = Array(text)
            #expect(characters[14] == "4", "version nibble of \(text)")
            #expect("89ab".contains(characters[19]), "variant of \(text)")
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
    }
}

@Suite("Time-ordered UUIDs")
struct TimeOrderedUUIDTests {
    /// Version 7, RFC 4122 variant, the given Unix milliseconds in the first 48 bits (big-endian),
    /// random bits after them.
    @Test func layoutIsVersion7WithTheTimeFirst() {
        let ms: UInt64 = 0x0123_4567_89AB
        var seen = Set<UUID>()
        for _ in 0..<5_000 {
            let id = UUID.timeOrdered(milliseconds: ms)
            let text = id.apiString
            #expect(text.hasPrefix("01234567-89ab-7"), "\(text)")
            #expect("89ab".contains(Array(text)[19]), "variant of \(text)")
            seen.insert(id)
        }
        #expect(seen.count == 5_000, "74 random bits: no repeats within one millisecond")
    }

    /// Ids minted later sort after earlier ones (as text and as Postgres orders uuids: bytewise).
    @Test func laterIdsSortAfterEarlierOnes() {
        let ids = [UInt64(1_700_000_000_000), 1_700_000_000_001, 1_800_000_000_000, 281_474_976_710_655]
            .map { UUID.timeOrdered(milliseconds: $0).apiString }
        #expect(ids == ids.sorted())
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let minted = UUID.timeOrdered()
        let stamp = withUnsafeBytes(of: minted.uuid) { bytes in bytes.prefix(6).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        #expect(stamp >= now && stamp <= now + 1_000)
    }
}

@Suite("UUID text")
struct UUIDTextTests {
    /// The hand-written formatter agrees with Foundation's on random ids and on the extremes.
    @Test func lowercasedStringMatchesFoundation() {
        let fixed = [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                     UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)),
                     UUID(uuidString: "0123ABCD-4567-89EF-FEDC-BA9876543210")!]
        for id in fixed + (0..<1_000).map({ _ in UUID.random() }) {
            #expect(id.apiString == id.uuidString.lowercased())
            #expect(UUID(uuidString: id.apiString) == id)
        }
    }
}

@Suite("Id entropy")
struct IDEntropyTests {
    /// Ids keep their version and variant and never repeat across many refills of the buffer,
    /// including from many threads at once.
    @Test func idsStayDistinctAcrossRefillsAndThreads() async {
        let perTask = 5_000
        let all = await withTaskGroup(of: [UUID].self) { group in
            for _ in 0..<8 { group.addTask { (0..<perTask).map { _ in UUID.random() } } }
            var all: [UUID] = []
            for await ids in group { all += ids }
            return all
        }
        #expect(Set(all).count == 8 * perTask)
        #expect(all.allSatisfy { $0.uuid.6 >> 4 == 4 && $0.uuid.8 >> 6 == 2 })
        // Not all zeros, nor one repeated byte: the buffer really was filled.
        #expect(Set(all.prefix(1000).map { $0.uuid.0 }).count > 100)
    }
}

@Suite("Id entropy refills")
struct IDEntropyRefillTests {
    /// Consecutive refills never repeat: 4 KiB blocks drawn across several refills are all distinct,
    /// and their bytes are spread evenly (a block of zeros or a repeated block would show).
    @Test func refillsAreFreshAndEvenlySpread() {
        let entropy = IDEntropy()
        var blocks = Set<[UInt8]>()
        var counts = [Int](repeating: 0, count: 256)
        for _ in 0..<8 {
            var block = [UInt8](repeating: 0, count: 4096)
            block.withUnsafeMutableBytes { all in
                for offset in stride(from: 0, to: 4096, by: 16) {
                    entropy.take(into: UnsafeMutableRawBufferPointer(rebasing: all[offset..<offset + 16]))
                }
            }
            blocks.insert(block)
            for byte in block { counts[Int(byte)] += 1 }
        }
        #expect(blocks.count == 8)
        // 32,768 bytes: 128 per value expected; a fair generator stays far inside 64...192.
        #expect(counts.allSatisfy { (64...192).contains($0) }, "\(counts.min()!)...\(counts.max()!)")
        // Two generators (two keys) never produce the same stream.
        var a = [UInt8](repeating: 0, count: 16), b = [UInt8](repeating: 0, count: 16)
        a.withUnsafeMutableBytes { IDEntropy().take(into: $0) }
        b.withUnsafeMutableBytes { IDEntropy().take(into: $0) }
        #expect(a != b)
    }
}

import Foundation
import Testing
import TollgateDomain

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

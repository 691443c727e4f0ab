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

@Suite("UUID text")
struct UUIDTextTests {
    /// The hand-written formatter agrees with Foundation's on random ids and on the extremes.
    @Test func lowercasedStringMatchesFoundation() {
        let fixed = [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
                     UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)),
                     UUID(uuidString: "0123ABCD-4567-89EF-FEDC-BA9876543210")!]
        for id in fixed + (0..<1_000).map({ _ in UUID.random() }) {
            #expect(id.lowercasedString == id.uuidString.lowercased())
            #expect(UUID(uuidString: id.lowercasedString) == id)
        }
    }
}

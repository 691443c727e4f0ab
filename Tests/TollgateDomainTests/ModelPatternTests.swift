import Foundation
import Testing
@testable import TollgateDomain

@Suite struct ModelPatternTests {
    static func matches(_ pattern: String, _ model: String) throws -> Bool {
        try ModelPattern(pattern).matches(model)
    }

    @Test func exactMatch() throws {
        #expect(try Self.matches("mistral-small-latest", "mistral-small-latest"))
        #expect(try !Self.matches("mistral-small-latest", "mistral-small-latest2"))
        #expect(try !Self.matches("mistral-small-latest", "mistral-small-lates"))
        #expect(try !Self.matches("mistral-small-latest", "xmistral-small-latest"))
        #expect(try !Self.matches("mistral-small-latest", ""))
    }

    @Test func caseSensitive() throws {
        #expect(try !Self.matches("mistral-small-latest", "Mistral-small-latest"))
        #expect(try !Self.matches("Mistral-*", "mistral-small"))
        #expect(try !Self.matches("*-LATEST", "mistral-large-latest"))
    }

    @Test func starAsSuffix() throws {
        #expect(try Self.matches("mistral-small-*", "mistral-small-latest"))
        #expect(try Self.matches("mistral-small-*", "mistral-small-2603"))
        #expect(try Self.matches("mistral-small-*", "mistral-small-"))
        #expect(try !Self.matches("mistral-small-*", "mistral-small"))
        #expect(try !Self.matches("mistral-small-*", "mistral-large-latest"))
    }

    @Test func starAsPrefix() throws {
        #expect(try Self.matches("*-latest", "mistral-large-latest"))
        #expect(try Self.matches("*-latest", "-latest"))
        #expect(try Self.matches("*-latest", "a-latest-latest"))
        #expect(try !Self.matches("*-latest", "mistral-large-latest-2"))
        #expect(try !Self.matches("*-latest", "latest"))
    }

    @Test func starInTheMiddleAndSeveralStars() throws {
        #expect(try Self.matches("mistral-*-latest", "mistral-small-latest"))
        #expect(try Self.matches("mistral-*-latest", "mistral--latest"))
        #expect(try Self.matches("mistral-*-latest", "mistral-a-b-c-latest"))
        #expect(try !Self.matches("mistral-*-latest", "mistral-latest"))
        #expect(try !Self.matches("mistral-*-latest", "codestral-x-latest"))
        #expect(try Self.matches("*small*", "mistral-small-latest"))
        #expect(try Self.matches("*small*", "small"))
        #expect(try !Self.matches("*small*", "smal"))
        #expect(try Self.matches("m*s*l*", "mistral-small-latest"))
        #expect(try Self.matches("*a*b*c*", "xaxbxcx"))
        #expect(try !Self.matches("*a*b*c*", "cba"))
        #expect(try Self.matches("a**b", "ab"))
        #expect(try Self.matches("a**b", "axyzb"))
        #expect(try Self.matches("ab*ab", "abab"))
        #expect(try !Self.matches("ab*ab", "aba"))
        #expect(try Self.matches("*aab", "aaab"))
    }

    @Test func starAlone() throws {
        for model in ["", "x", "mistral-large-latest", "ft:open-mistral-7b:abc:xyz", "modèle"] {
            #expect(try Self.matches("*", model))
            #expect(try Self.matches("**", model))
        }
        #expect(try !Self.matches("a*", ""))
    }

    @Test(arguments: [
        "mistral-small-latest", "ft:open-mistral-7b:587a6b29:20240514:c80bba3b", "org/model_v1.2", "*", "a",
        String(repeating: "a", count: 128), String(repeating: "*", count: 128),
    ])
    func acceptsValidPatterns(_ pattern: String) throws {
        #expect(try ModelPattern(pattern).pattern == pattern)
        #expect(try ModelPattern(pattern).description == pattern)
    }

    @Test(arguments: [
        "", " ", "mistral small", "mistral?", "mistral[0-9]", "{a,b}", "mistral\n", "\tmistral", "modèle", "ｍistral",
        "%", "a;b", "a'b", "a\"b", "a\\b", "a+b", "a|b", "a,b", "a\0b", "🙂", String(repeating: "a", count: 129),
        String(repeating: "é", count: 65),
    ])
    func rejectsInvalidPatterns(_ pattern: String) {
        #expect(throws: ModelPatternError.invalid(pattern)) { try ModelPattern(pattern) }
    }

    @Test func pathologicalPatternFinishesFast() throws {
        let pattern = try ModelPattern("a*a*a*a*a*b")
        let long = String(repeating: "a", count: 20_000)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            #expect(!pattern.matches(long))
            #expect(pattern.matches(long + "b"))
        }
        #expect(elapsed < .seconds(2), "took \(elapsed)")

        let manyStars = try ModelPattern(String(repeating: "*a", count: 60) + "b")
        let elapsed2 = clock.measure {
            #expect(!manyStars.matches(String(repeating: "a", count: 5_000)))
        }
        #expect(elapsed2 < .seconds(2), "took \(elapsed2)")
    }

    /// Compares the matcher with a dynamic-programming reference on random small patterns.
    @Test func agreesWithReferenceMatcher() throws {
        var rng = GlobRNG(seed: 12345)
        let patternAlphabet: [Character] = ["a", "b", "*", "-"]
        let textAlphabet: [Character] = ["a", "b", "-"]
        for _ in 0..<20_000 {
            let pattern = String((0..<Int.random(in: 1...8, using: &rng)).map { _ in patternAlphabet.randomElement(using: &rng)! })
            let text = String((0..<Int.random(in: 0...10, using: &rng)).map { _ in textAlphabet.randomElement(using: &rng)! })
            #expect(try ModelPattern(pattern).matches(text) == referenceGlob(Array(pattern.utf8), Array(text.utf8)),
                    "\(pattern) vs \(text)")
        }
    }

    // MARK: ModelAllowList

    @Test func emptyAllowListAllowsEverything() throws {
        let list = ModelAllowList([])
        #expect(list.allows("mistral-large-latest"))
        #expect(list.allows(""))
        #expect(list.allows("anything at all"))
        #expect(try ModelAllowList(parsing: []).allows("x"))
    }

    @Test func allowListAllowsAnyMatchingPattern() throws {
        let list = try ModelAllowList(parsing: ["mistral-small-*", "codestral-latest", "*-embed"])
        #expect(list.patterns.count == 3)
        #expect(list.allows("mistral-small-latest"))
        #expect(list.allows("codestral-latest"))
        #expect(list.allows("mistral-embed"))
        #expect(!list.allows("codestral-2508"))
        #expect(!list.allows("mistral-large-latest"))
        #expect(!list.allows("Mistral-small-latest"))
        #expect(!list.allows(""))
    }

    @Test func allowListParsingRejectsTheFirstInvalidEntry() {
        #expect(throws: ModelPatternError.invalid("bad entry")) {
            try ModelAllowList(parsing: ["mistral-*", "bad entry", ""])
        }
        #expect(ModelPatternError.invalid("x y").description.contains("'x y'"))
    }
}

/// Classic O(n·m) wildcard matching.
private func referenceGlob(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
    let star = UInt8(ascii: "*")
    var dp = [[Bool]](repeating: [Bool](repeating: false, count: text.count + 1), count: pattern.count + 1)
    dp[0][0] = true
    for i in 1...max(1, pattern.count) where i <= pattern.count {
        for j in 0...text.count {
            if pattern[i - 1] == star {
                dp[i][j] = dp[i - 1][j] || (j > 0 && dp[i][j - 1])
            } else {
                dp[i][j] = j > 0 && dp[i - 1][j - 1] && pattern[i - 1] == text[j - 1]
            }
        }
    }
    return dp[pattern.count][text.count]
}

private struct GlobRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

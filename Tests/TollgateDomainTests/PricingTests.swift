import Testing
@testable import TollgateDomain

@Suite struct PricingTests {
    static func perMillion(_ decimal: String) -> Money { try! Money(decimal: decimal) }

    @Test func cachedInputDefaultsToTenPercent() {
        let price = Price(inputPerMillion: Self.perMillion("0.15"), outputPerMillion: Self.perMillion("0.60"))
        #expect(price.inputPerMillion.nanos == 150_000_000)
        #expect(price.cachedInputPerMillion.nanos == 15_000_000)
        #expect(price.perPage == nil)
        let explicit = Price(inputPerMillion: Self.perMillion("0.15"), outputPerMillion: .zero,
                             cachedInputPerMillion: Self.perMillion("0.05"))
        #expect(explicit.cachedInputPerMillion.nanos == 50_000_000)
    }

    @Test func oneCachedTokenAtTenCentsPerMillion() {
        let price = Price(inputPerMillion: Self.perMillion("0.10"), outputPerMillion: Self.perMillion("0.30"))
        #expect(price.cost(of: Usage(promptTokens: 1, cachedTokens: 1)) == Money(nanos: 10))
    }

    @Test func uncachedTokens() {
        let price = Price(inputPerMillion: Self.perMillion("0.15"), outputPerMillion: Self.perMillion("0.60"))
        #expect(price.cost(of: Usage(promptTokens: 1)) == Money(nanos: 150))
        #expect(price.cost(of: Usage(promptTokens: 3)) == Money(nanos: 450))
        #expect(price.cost(of: Usage(completionTokens: 3)) == Money(nanos: 1_800))
        #expect(price.cost(of: Usage(promptTokens: 1_000_000)) == Self.perMillion("0.15"))
    }

    @Test func roundsUpToTheNextNano() {
        let price = Price(inputPerMillion: Money(nanos: 1), outputPerMillion: Money(nanos: 1), cachedInputPerMillion: Money(nanos: 1))
        #expect(price.cost(of: Usage(promptTokens: 1)) == Money(nanos: 1))
        #expect(price.cost(of: Usage(promptTokens: 999_999)) == Money(nanos: 1))
        #expect(price.cost(of: Usage(promptTokens: 1_000_000)) == Money(nanos: 1))
        #expect(price.cost(of: Usage(promptTokens: 1_000_001)) == Money(nanos: 2))
        #expect(price.cost(of: Usage(promptTokens: 2_000_000)) == Money(nanos: 2))
    }

    /// The exact cost is summed over components first and rounded up once, not per component.
    @Test func roundsOncePerRequestNotPerComponent() {
        let price = Price(inputPerMillion: Money(nanos: 1), outputPerMillion: Money(nanos: 1), cachedInputPerMillion: Money(nanos: 1))
        // 1 uncached + 1 cached + 1 completion = 3 / 10^6 nanos -> 1 nano (per component would be 3).
        #expect(price.cost(of: Usage(promptTokens: 2, completionTokens: 1, cachedTokens: 1)) == Money(nanos: 1))
        let odd = Price(inputPerMillion: Money(nanos: 500_001), outputPerMillion: Money(nanos: 500_001),
                        cachedInputPerMillion: Money(nanos: 0))
        // 500_001 + 500_001 = 1_000_002 -> ceil(1.000002) = 2.
        #expect(odd.cost(of: Usage(promptTokens: 1, completionTokens: 1)) == Money(nanos: 2))
        let third = Price(inputPerMillion: Money(nanos: 333_334), outputPerMillion: Money(nanos: 333_334),
                          cachedInputPerMillion: Money(nanos: 333_334))
        // Three components of 333_334 each sum to 1_000_002 -> 2 (rounding each one up would give 3).
        #expect(third.cost(of: Usage(promptTokens: 2, completionTokens: 1, cachedTokens: 1)) == Money(nanos: 2))
    }

    @Test func realisticRequest() {
        // mistral-small-latest: $0.15 / $0.60 per M, cached $0.015.
        let price = Price(inputPerMillion: Money(nanos: 150_000_000), outputPerMillion: Money(nanos: 600_000_000))
        let usage = Usage(promptTokens: 1_000, completionTokens: 500, cachedTokens: 200)
        // 800 × 150 + 200 × 15 + 500 × 600 = 120_000 + 3_000 + 300_000 nanos.
        #expect(price.cost(of: usage) == Money(nanos: 423_000))
    }

    @Test func zeroUsageCostsNothing() {
        let price = Price(inputPerMillion: Self.perMillion("2"), outputPerMillion: Self.perMillion("6"),
                          perPage: Self.perMillion("0.004"))
        #expect(price.cost(of: Usage()) == .zero)
        #expect(Price(inputPerMillion: .zero, outputPerMillion: .zero).cost(of: Usage(promptTokens: 10_000, completionTokens: 10)) == .zero)
    }

    @Test func cachedBeyondPromptIsClamped() {
        let price = Price(inputPerMillion: Money(nanos: 1_000_000), outputPerMillion: .zero,
                          cachedInputPerMillion: Money(nanos: 100_000))
        // 10 prompt tokens, all cached (the 50 reported cannot exceed the prompt): 10 × 0.1 = 1 nano.
        #expect(price.cost(of: Usage(promptTokens: 10, cachedTokens: 50)) == Money(nanos: 1))
        #expect(price.cost(of: Usage(promptTokens: 10, cachedTokens: 10)) == Money(nanos: 1))
        #expect(price.cost(of: Usage(promptTokens: 10, cachedTokens: 0)) == Money(nanos: 10))
        // Negative counts from a confused upstream count as zero.
        #expect(price.cost(of: Usage(promptTokens: -5, completionTokens: -5, cachedTokens: -5, pages: -5)) == .zero)
        #expect(price.cost(of: Usage(promptTokens: 10, cachedTokens: -5)) == Money(nanos: 10))
    }

    @Test func pagesTimesPerPage() {
        let ocr = Price(inputPerMillion: .zero, outputPerMillion: .zero, perPage: Money(nanos: 4_000_000))
        #expect(ocr.cost(of: Usage(pages: 1)) == Money(nanos: 4_000_000))
        #expect(ocr.cost(of: Usage(pages: 3)) == Money(nanos: 12_000_000))
        let noPagePrice = Price(inputPerMillion: Money(nanos: 1_000_000), outputPerMillion: .zero)
        #expect(noPagePrice.cost(of: Usage(pages: 100)) == .zero)
        // Tokens are rounded up, then the (whole-nano) page cost is added.
        let mixed = Price(inputPerMillion: Money(nanos: 1), outputPerMillion: .zero, perPage: Money(nanos: 7))
        #expect(mixed.cost(of: Usage(promptTokens: 1, pages: 2)) == Money(nanos: 15))
    }

    @Test func hugeCountsUseWideArithmetic() {
        // 10^12 tokens × 2×10^9 nanos/M overflows Int64 before the division.
        let price = Price(inputPerMillion: Money(nanos: 2_000_000_000), outputPerMillion: Money(nanos: 6_000_000_000))
        #expect(price.cost(of: Usage(promptTokens: 1_000_000_000_000)) == Money(nanos: 2_000_000_000_000_000))
        #expect(price.cost(of: Usage(promptTokens: 1_000_000_000_000, completionTokens: 1_000_000_000_000))
                == Money(nanos: 8_000_000_000_000_000))
        // Beyond Int64 the cost saturates instead of trapping or wrapping.
        let maxPrice = Price(inputPerMillion: Money(nanos: .max), outputPerMillion: Money(nanos: .max),
                             cachedInputPerMillion: Money(nanos: .max), perPage: Money(nanos: .max))
        let maxUsage = Usage(promptTokens: .max, completionTokens: .max, cachedTokens: .max / 2, pages: .max)
        #expect(maxPrice.cost(of: maxUsage) == Money(nanos: .max))
        #expect(maxPrice.cost(of: Usage(promptTokens: .max)) == Money(nanos: .max))
        #expect(maxPrice.cost(of: Usage(pages: .max)) == Money(nanos: .max))
        #expect(maxPrice.cost(of: Usage(promptTokens: 1)) == Money(nanos: Int64.max / 1_000_000 + 1))
    }

    /// The cost is the smallest whole nano that is >= the exact cost.
    @Test func costIsTheCeilingOfTheExactCost() {
        var rng = PriceRNG(seed: 99)
        for _ in 0..<20_000 {
            let input = Int64.random(in: 0...10_000_000_000, using: &rng)
            let output = Int64.random(in: 0...10_000_000_000, using: &rng)
            let cachedPrice = Int64.random(in: 0...input, using: &rng)
            let prompt = Int.random(in: 0...2_000_000, using: &rng)
            let cached = Int.random(in: 0...prompt, using: &rng)
            let completion = Int.random(in: 0...2_000_000, using: &rng)
            let pages = Int.random(in: 0...3, using: &rng)
            let perPage = Int64.random(in: 0...10_000_000, using: &rng)
            let price = Price(inputPerMillion: Money(nanos: input), outputPerMillion: Money(nanos: output),
                              cachedInputPerMillion: Money(nanos: cachedPrice), perPage: Money(nanos: perPage))
            let cost = price.cost(of: Usage(promptTokens: prompt, completionTokens: completion, cachedTokens: cached, pages: pages))
            let exactMicro = Int128(prompt - cached) * Int128(input) + Int128(cached) * Int128(cachedPrice)
                + Int128(completion) * Int128(output)  // in 10^-6 nanos
            let tokenNanos = Int128(cost.nanos) - Int128(pages) * Int128(perPage)
            #expect(tokenNanos * 1_000_000 >= exactMicro)
            #expect((tokenNanos - 1) * 1_000_000 < exactMicro || (tokenNanos == 0 && exactMicro == 0))
        }
    }

    @Test func usageDefaults() {
        let usage = Usage()
        #expect(usage.promptTokens == 0 && usage.completionTokens == 0 && usage.cachedTokens == 0 && usage.pages == 0)
    }
}

private struct PriceRNG: RandomNumberGenerator {
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

import Foundation
import HTTPTypes
import TollgateDomain
import TollgateStorage

/// Stage 1: who is calling. A malformed key or a bad checksum is refused without any lookup;
/// known keys come from an in-memory cache (kept fresh by LISTEN/NOTIFY, with a TTL behind it);
/// unknown keys are negative-cached so random keys cannot hammer the database.
struct Authenticator: Sendable {
    let hasher: SecretHasher
    let cache: KeyCache
    let database: Database
    let directory: KeyDirectory

    func authenticate(_ headers: HTTPFields) async throws -> ResolvedKey {
        guard let header = headers[.authorization] else { throw ProxyError.invalidKey }
        let parts = header.split(separator: " ", maxSplits: 1)
        // Trimmed as a Substring: Foundation's trimmingCharacters bridges through NSString on
        // every request.
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              let token = try? SecretToken.parse(parts[1].trimmingSpaces, as: .virtualKey)
        else { throw ProxyError.invalidKey }
        let hash = Data(hasher.hash(token.value))
        switch cache.lookup(hash) {
        case .hit(let key):
            // A rotated-away secret stops working when its grace ends, cached or not.
            if let until = key.secretValidUntil, until <= Date() { throw ProxyError.invalidKey }
            return key
        case .knownUnknown: throw ProxyError.invalidKey
        case .miss: break
        }
        let generation = cache.generation
        let resolved: ResolvedKey?
        do {
            let started = ContinuousClock.now
            resolved = try await withDeadline(.seconds(3)) { [database, directory] in
                try await database.read { try await directory.resolve(hash: Array(hash), on: $0) }
            }
            ProxyMetrics.keyLookup(.now - started)
        } catch {
            throw ProxyError.unavailable("The gateway cannot reach its database; retry shortly.")
        }
        cache.store(hash, resolved, ifGeneration: generation)
        guard let resolved else { throw ProxyError.invalidKey }
        return resolved
    }
}

/// Key lookups by secret hash. Entries expire after `ttl`; `invalidate` drops what a change
/// notification names. `generation` guards against storing a lookup that raced an invalidation.
final class KeyCache: Sendable {
    enum Lookup { case hit(ResolvedKey), knownUnknown, miss }

    private struct Entry { var key: ResolvedKey?; var expires: ContinuousClock.Instant }
    private struct State {
        var entries: [Data: Entry] = [:]
        var negativeCount = 0
        var generation: UInt64 = 0
    }

    private let state = Locked(State())
    private let ttl: Duration
    private let negativeLimit: Int

    init(ttl: Duration, negativeLimit: Int) {
        self.ttl = ttl
        self.negativeLimit = negativeLimit
    }

    var generation: UInt64 { state.withLock { $0.generation } }

    func lookup(_ hash: Data) -> Lookup {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard let entry = state.entries[hash], entry.expires > now else { return .miss }
            return entry.key.map(Lookup.hit) ?? .knownUnknown
        }
    }

    func store(_ hash: Data, _ key: ResolvedKey?, ifGeneration generation: UInt64) {
        let expires = ContinuousClock.now + ttl
        state.withLock { state in
            guard state.generation == generation else { return }
            if key == nil {
                // Bounded: when full, forget every negative entry rather than grow without limit.
                if state.negativeCount >= negativeLimit {
                    state.entries = state.entries.filter { $0.value.key != nil }
                    state.negativeCount = 0
                }
                state.negativeCount += 1
            }
            state.entries[hash] = Entry(key: key, expires: expires)
        }
    }

    /// Drops entries of a key or of every key of a tenant. New keys can appear at any time, so the
    /// negative cache is cleared too.
    func invalidate(keyID: UUID?, tenantID: UUID?) {
        state.withLock { state in
            state.generation &+= 1
            state.entries = state.entries.filter { _, entry in
                guard let key = entry.key else { return false }
                return key.keyID != keyID && key.tenantID != tenantID
            }
            state.negativeCount = 0
        }
    }

    func invalidateAll() {
        state.withLock { state in
            state.generation &+= 1
            state.entries.removeAll()
            state.negativeCount = 0
        }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}

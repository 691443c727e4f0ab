import Crypto
import Foundation
import Testing
@testable import TollgateDomain

extension EncryptionTests {
    @Suite struct Keyring {
        typealias F = EncryptionFixtures
        typealias E = MasterKeyringError

        static func b64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
        static func key(_ fill: UInt8, count: Int = 32) -> String { b64([UInt8](repeating: fill, count: count)) }

        @Test func parsesCommaSeparatedEnvironmentValue() throws {
            let ring = try MasterKeyring.load(environment: [
                "TOLLGATE_MASTER_KEYS": " 1:\(Self.key(1)) , 3:\(Self.key(3)),2:\(Self.key(2)) ",
            ])
            #expect(ring.versions == [1, 2, 3])
            #expect(ring.primaryVersion == 3)
            #expect(ring.status == "master keyring: versions 1, 2, 3; primary 3")
        }

        @Test func explicitPrimaryWins() throws {
            let ring = try MasterKeyring.load(environment: [
                "TOLLGATE_MASTER_KEYS": "1:\(Self.key(1)),2:\(Self.key(2))",
                "TOLLGATE_MASTER_KEY_PRIMARY": "1",
            ])
            #expect(ring.primaryVersion == 1)
        }

        @Test func parsesFileWithCommentsAndBlankLines() throws {
            let url = FileManager.default.temporaryDirectory
                .appendingPathComponent("tollgate-keys-\(UUID().uuidString).txt")
            defer { try? FileManager.default.removeItem(at: url) }
            let text = """
            # Tollgate master keys
            
            1:\(Self.key(1))   # retired after rotation
              2:\(Self.key(2)),
            \t
            5:\(Self.key(5)), 4:\(Self.key(4))
            # trailing comment
            """
            try text.write(to: url, atomically: true, encoding: .utf8)
            let ring = try MasterKeyring.load(environment: ["TOLLGATE_MASTER_KEYS_FILE": url.path])
            #expect(ring.versions == [1, 2, 4, 5])
            #expect(ring.primaryVersion == 5)

            let missingPath = url.path + ".missing"
            #expect(throws: E.unreadableFile(path: missingPath)) {
                try MasterKeyring.load(environment: ["TOLLGATE_MASTER_KEYS_FILE": missingPath])
            }
        }

        @Test func generatedEntryParses() throws {
            let entry = MasterKeyring.generateEntry(version: 9)
            #expect(entry.hasPrefix("9:"))
            #expect(Data(base64Encoded: String(entry.dropFirst(2)))?.count == 32)
            let ring = try MasterKeyring.parse(entry)
            #expect(ring.versions == [9] && ring.primaryVersion == 9)
            #expect(MasterKeyring.generateEntry(version: 9) != entry)
        }

        @Test func initValidates() throws {
            let ring = try MasterKeyring(keys: [2: F.randomKey(), 1: F.randomKey()], primary: 1)
            #expect(ring.versions == [1, 2] && ring.primaryVersion == 1)
            #expect(throws: E.primaryNotInKeyring(primary: 3, versions: [1, 2])) {
                try MasterKeyring(keys: [2: F.randomKey(), 1: F.randomKey()], primary: 3)
            }
            #expect(throws: E.wrongKeyLength(version: 1, byteCount: 16)) {
                try MasterKeyring(keys: [1: SymmetricKey(size: .bits128)], primary: 1)
            }
            #expect(throws: E.zeroVersion) { try MasterKeyring(keys: [0: F.randomKey()], primary: 0) }
            #expect(throws: E.primaryNotInKeyring(primary: 1, versions: [])) { try MasterKeyring(keys: [:], primary: 1) }
        }

        /// (environment, expected error, expected message)
        static let errorCases: [([String: String], MasterKeyringError, String)] = [
            ([:], .missing,
             "no master keys configured: set TOLLGATE_MASTER_KEYS or TOLLGATE_MASTER_KEYS_FILE (entries <version>:<base64 of 32 bytes>; `tollgate` can generate one)"),
            (["TOLLGATE_MASTER_KEYS": "  ", "TOLLGATE_MASTER_KEY_PRIMARY": ""], .missing, ""),
            (["TOLLGATE_MASTER_KEYS": "1:\(key(1))", "TOLLGATE_MASTER_KEYS_FILE": "/etc/keys"], .conflictingSources,
             "both TOLLGATE_MASTER_KEYS and TOLLGATE_MASTER_KEYS_FILE are set; set only one"),
            (["TOLLGATE_MASTER_KEYS": " , ,# nothing"], .noEntries(source: "TOLLGATE_MASTER_KEYS"),
             "TOLLGATE_MASTER_KEYS contains no master key entries"),
            (["TOLLGATE_MASTER_KEYS": "1:\(key(1)),\(key(2))"], .malformedEntry(index: 2, problem: .missingSeparator),
             "master key entry 2 is malformed: expected <version>:<base64 key>"),
            (["TOLLGATE_MASTER_KEYS": "0:\(key(1))"], .malformedEntry(index: 1, problem: .invalidVersion),
             "master key entry 1 is malformed: the version is not a positive integer"),
            (["TOLLGATE_MASTER_KEYS": "-1:\(key(1))"], .malformedEntry(index: 1, problem: .invalidVersion), ""),
            (["TOLLGATE_MASTER_KEYS": "+1:\(key(1))"], .malformedEntry(index: 1, problem: .invalidVersion), ""),
            (["TOLLGATE_MASTER_KEYS": "v1:\(key(1))"], .malformedEntry(index: 1, problem: .invalidVersion), ""),
            (["TOLLGATE_MASTER_KEYS": "4294967296:\(key(1))"], .malformedEntry(index: 1, problem: .invalidVersion), ""),
            (["TOLLGATE_MASTER_KEYS": ":\(key(1))"], .malformedEntry(index: 1, problem: .invalidVersion), ""),
            (["TOLLGATE_MASTER_KEYS": "1:\(key(1))\n2:\(key(2))!"], .malformedEntry(index: 2, problem: .invalidBase64),
             "master key entry 2 is malformed: the key is not valid base64"),
            (["TOLLGATE_MASTER_KEYS": "1:"], .malformedEntry(index: 1, problem: .invalidBase64), ""),
            (["TOLLGATE_MASTER_KEYS": "1:\(key(1)):\(key(2))"], .malformedEntry(index: 1, problem: .invalidBase64), ""),
            (["TOLLGATE_MASTER_KEYS": "1:\(key(1)),2:\(key(2, count: 16))"], .wrongKeyLength(version: 2, byteCount: 16),
             "master key version 2 is 16 bytes; AES-256 needs 32 bytes"),
            (["TOLLGATE_MASTER_KEYS": "7:\(key(7, count: 33))"], .wrongKeyLength(version: 7, byteCount: 33), ""),
            (["TOLLGATE_MASTER_KEYS": "1:\(key(1)),2:\(key(2))\n1:\(key(3))"], .duplicateVersion(1),
             "master key version 1 appears more than once"),
            (["TOLLGATE_MASTER_KEYS": "1:\(key(1)),2:\(key(2))", "TOLLGATE_MASTER_KEY_PRIMARY": "3"],
             .primaryNotInKeyring(primary: 3, versions: [1, 2]),
             "primary master key version 3 is not in the keyring (versions: 1, 2)"),
            (["TOLLGATE_MASTER_KEYS": "1:\(key(1))", "TOLLGATE_MASTER_KEY_PRIMARY": "one"], .invalidPrimary,
             "TOLLGATE_MASTER_KEY_PRIMARY is not a positive integer"),
            (["TOLLGATE_MASTER_KEYS": "1:\(key(1))", "TOLLGATE_MASTER_KEY_PRIMARY": "0"], .invalidPrimary, ""),
        ]

        @Test(arguments: errorCases.indices)
        func loadErrors(caseIndex: Int) {
            let (environment, expected, message) = Self.errorCases[caseIndex]
            #expect(throws: expected) { try MasterKeyring.load(environment: environment) }
            if !message.isEmpty {
                #expect(expected.description == message)
            }
        }

        @Test func unknownWrapVersionMessage() {
            #expect(E.dataKeyVersionNotInKeyring(3).description
                == "data key is wrapped with master key version 3, which is not in the keyring")
        }

        /// Canary: every error (and every description of a keyring) must not echo key material.
        @Test func descriptionsNeverContainKeyMaterial() throws {
            let canaryBytes = Array("CANARY-key-material-0123456789!!".utf8)   // 32 bytes
            let canary = Self.b64(canaryBytes)
            let canary16 = Self.b64(Array(canaryBytes.prefix(16)))
            let canaryLong = Self.b64(canaryBytes + canaryBytes)
            let inputs: [[String: String]] = [
                ["TOLLGATE_MASTER_KEYS": canary],
                ["TOLLGATE_MASTER_KEYS": "\(canary):\(canary)"],
                ["TOLLGATE_MASTER_KEYS": "x\(canary):\(canary)"],
                ["TOLLGATE_MASTER_KEYS": "1:\(canary)!"],
                ["TOLLGATE_MASTER_KEYS": "1:\(canary16)"],
                ["TOLLGATE_MASTER_KEYS": "1:\(canaryLong)"],
                ["TOLLGATE_MASTER_KEYS": "1:\(canary),1:\(canary)"],
                ["TOLLGATE_MASTER_KEYS": "1:\(canary)", "TOLLGATE_MASTER_KEY_PRIMARY": canary],
                ["TOLLGATE_MASTER_KEYS": "1:\(canary)", "TOLLGATE_MASTER_KEY_PRIMARY": "2"],
                ["TOLLGATE_MASTER_KEYS": "1:\(canary)", "TOLLGATE_MASTER_KEYS_FILE": "/nonexistent"],
            ]
            let secrets = [canary, canary16, canaryLong, "CANARY", String(canary.prefix(12)), String(canary.suffix(12))]
            var checked = 0
            for environment in inputs {
                do {
                    _ = try MasterKeyring.load(environment: environment)
                    Issue.record("expected an error for \(environment.keys.sorted())")
                } catch {
                    let texts = [String(describing: error), String(reflecting: error), "\(error)", error.localizedDescription]
                    for text in texts {
                        for secret in secrets {
                            #expect(!text.contains(secret), "error text leaks key material: \(type(of: error))")
                        }
                    }
                    checked += 1
                }
            }
            #expect(checked == inputs.count)

            let ring = try MasterKeyring.load(environment: ["TOLLGATE_MASTER_KEYS": "1:\(canary)"])
            var dumped = ""
            dump(ring, to: &dumped)
            for text in [ring.status, ring.description, String(reflecting: ring), "\(ring)", dumped] {
                for secret in secrets { #expect(!text.contains(secret)) }
                #expect(!text.contains("0123456789"))
            }
        }
    }
}

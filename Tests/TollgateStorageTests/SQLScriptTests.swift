import Foundation
import PostgresNIO
import Testing
import TollgateTestSupport
@testable import TollgateStorage

@Suite struct SQLScriptTests {
    static func split(_ script: String) -> [String] { SQLScript.statements(in: script) }

    @Test func plainStatements() {
        #expect(Self.split("SELECT 1; SELECT 2;") == ["SELECT 1", "SELECT 2"])
        #expect(Self.split("SELECT 1;\n\nSELECT 2") == ["SELECT 1", "SELECT 2"])
        #expect(Self.split("  SELECT 1  ") == ["SELECT 1"])
        #expect(Self.split("SELECT 4/2; SELECT 3-1; SELECT 2*2") == ["SELECT 4/2", "SELECT 3-1", "SELECT 2*2"])
    }

    @Test func emptyScripts() {
        #expect(Self.split("").isEmpty)
        #expect(Self.split(" \n\t ").isEmpty)
        #expect(Self.split(";;;\n;").isEmpty)
        #expect(Self.split("-- just a comment\n-- and another; with a semicolon").isEmpty)
    }

    @Test func semicolonsInStringLiterals() {
        #expect(Self.split("SELECT 'a;b'; SELECT 2") == ["SELECT 'a;b'", "SELECT 2"])
        #expect(Self.split("SELECT 'it''s; fine'; SELECT 'x'") == ["SELECT 'it''s; fine'", "SELECT 'x'"])
        #expect(Self.split("SELECT ''';'''; SELECT ''") == ["SELECT ''';'''", "SELECT ''"])
        #expect(Self.split("SELECT 'héllo; 世界 🙂'; SELECT 2") == ["SELECT 'héllo; 世界 🙂'", "SELECT 2"])
        #expect(Self.split("SELECT '--not a comment;'; SELECT '/* nor this; */'") ==
                ["SELECT '--not a comment;'", "SELECT '/* nor this; */'"])
        #expect(Self.split("SELECT '$$;'; SELECT 2") == ["SELECT '$$;'", "SELECT 2"])
        #expect(Self.split("SELECT 'multi\nline;\nstring'; SELECT 2") == ["SELECT 'multi\nline;\nstring'", "SELECT 2"])
    }

    @Test func semicolonsInQuotedIdentifiers() {
        let script = #"CREATE TABLE "we;ird" ("a""b;" int, "it's" int); SELECT "we;ird".* FROM "we;ird""#
        #expect(Self.split(script) == [#"CREATE TABLE "we;ird" ("a""b;" int, "it's" int)"#, #"SELECT "we;ird".* FROM "we;ird""#])
    }

    @Test func dollarQuotedBodies() {
        let function = """
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
                RAISE NOTICE 'x; y';  -- comment; inside
                RETURN 1;
            END;
            $$
            """
        #expect(Self.split(function + ";\nSELECT f();") == [function, "SELECT f()"])

        let tagged = "DO $body$ BEGIN PERFORM 1; PERFORM $$nested; $$; END $body$; SELECT 2"
        #expect(Self.split(tagged) == ["DO $body$ BEGIN PERFORM 1; PERFORM $$nested; $$; END $body$", "SELECT 2"])

        let underscore = "SELECT $_x1$ a;b $_x$ c;d $_x1$; SELECT 3"
        #expect(Self.split(underscore) == ["SELECT $_x1$ a;b $_x$ c;d $_x1$", "SELECT 3"])

        #expect(Self.split("SELECT $$it's; here$$; SELECT 2") == ["SELECT $$it's; here$$", "SELECT 2"])
        #expect(Self.split("SELECT $$$$; SELECT 2") == ["SELECT $$$$", "SELECT 2"])
    }

    @Test func positionalParametersAreNotDollarQuotes() {
        #expect(Self.split("SELECT $1; SELECT $2::int") == ["SELECT $1", "SELECT $2::int"])
        #expect(Self.split("PREPARE p AS SELECT $1 + $2; EXECUTE p(1, 2)") == ["PREPARE p AS SELECT $1 + $2", "EXECUTE p(1, 2)"])
        #expect(Self.split("SELECT $1,$2;SELECT $10") == ["SELECT $1,$2", "SELECT $10"])
        #expect(Self.split("SELECT 1 AS a$b; SELECT 2") == ["SELECT 1 AS a$b", "SELECT 2"])
    }

    @Test func lineComments() {
        #expect(Self.split("SELECT 1 -- it's; a comment\n; SELECT 2") == ["SELECT 1 -- it's; a comment", "SELECT 2"])
        #expect(Self.split("-- header; with 'quote\nSELECT 1;\n-- trailing comment\n") == ["-- header; with 'quote\nSELECT 1"])
        #expect(Self.split("SELECT 1; -- done; really") == ["SELECT 1"])
        #expect(Self.split("SELECT 5 - -3; SELECT 1") == ["SELECT 5 - -3", "SELECT 1"])
    }

    @Test func blockComments() {
        #expect(Self.split("/* a; b */ SELECT 1; SELECT 2") == ["/* a; b */ SELECT 1", "SELECT 2"])
        let nested = "/* outer; /* inner; */ still outer; 'quote */ SELECT 1; SELECT 2"
        #expect(Self.split(nested) == ["/* outer; /* inner; */ still outer; 'quote */ SELECT 1", "SELECT 2"])
        #expect(Self.split("SELECT 1 /* c; */; SELECT 2") == ["SELECT 1 /* c; */", "SELECT 2"])
        #expect(Self.split("/**/SELECT 1;/***/SELECT 2") == ["/**/SELECT 1", "/***/SELECT 2"])
        #expect(Self.split("/* /* /* deep; */ */ */ SELECT 1") == ["/* /* /* deep; */ */ */ SELECT 1"])
    }

    @Test func trailingStatementWithoutSemicolon() {
        #expect(Self.split("SELECT 1;\nSELECT 2\n") == ["SELECT 1", "SELECT 2"])
        #expect(Self.split("INSERT INTO t VALUES (';')") == ["INSERT INTO t VALUES (';')"])
    }

    @Test func unterminatedConstructsDoNotCrash() {
        #expect(Self.split("SELECT 'abc; SELECT 2") == ["SELECT 'abc; SELECT 2"])
        #expect(Self.split("SELECT \"abc; SELECT 2") == ["SELECT \"abc; SELECT 2"])
        #expect(Self.split("SELECT $$abc; SELECT 2") == ["SELECT $$abc; SELECT 2"])
        #expect(Self.split("SELECT 1 /* abc; SELECT 2").count == 1)
        #expect(Self.split("SELECT $") == ["SELECT $"])
        #expect(Self.split("SELECT 1; /") == ["SELECT 1", "/"])
        #expect(Self.split("-") == ["-"])
        #expect(Self.split("'") == ["'"])
    }

    @Test
    func escapeStringWithBackslashQuote() {
        #expect(Self.split(#"SELECT E'it\'s; fine'; SELECT 2"#) == [#"SELECT E'it\'s; fine'"#, "SELECT 2"])
    }

    @Test
    func dollarInsideIdentifier() {
        #expect(Self.split("SELECT 1 AS a$b$c; SELECT 2") == ["SELECT 1 AS a$b$c", "SELECT 2"])
    }

    // MARK: Real migration files

    @Test func splitsTheInitialMigration() throws {
        let sql = try String(contentsOf: StorageTestPaths.migrations.appendingPathComponent("0001_init.sql"), encoding: .utf8)
        let statements = Self.split(sql)
        #expect(statements.count == 21, "\(statements.count)")
        let creates = statements.filter { $0.contains("CREATE TABLE") && !$0.contains("CREATE FUNCTION") }
        #expect(creates.count == 11)
        let function = statements.filter { $0.contains("CREATE FUNCTION tollgate_ensure_ledger_partitions") }
        #expect(function.count == 1)
        #expect(function.first?.hasSuffix("$$") == true)
        #expect(function.first?.contains("END LOOP;") == true)
        for statement in statements {
            #expect(!statement.hasSuffix(";"), "\(statement.prefix(60))")
            #expect(!statement.isEmpty)
        }
        let seeds = Self.split(try String(contentsOf: StorageTestPaths.migrations.appendingPathComponent("0002_seed_prices.sql"), encoding: .utf8))
        #expect(seeds.count == 1)
        #expect(seeds.first?.hasPrefix("-- Seed prices") == true)
    }

    /// Every statement of the real files executes, one by one, on a throwaway database.
    @Test func migrationStatementsExecuteOneByOne() async throws {
        let files = ["0001_init.sql", "0002_seed_prices.sql"]
        try await withTestDatabase { client, _ in
            for file in files {
                let sql = try String(contentsOf: StorageTestPaths.migrations.appendingPathComponent("\(file)"), encoding: .utf8)
                for statement in Self.split(sql) {
                    do {
                        try await client.query(PostgresQuery(unsafeSQL: statement))
                    } catch let error as PSQLError {
                        Issue.record("\(file): \(error.serverInfo?[.message] ?? "\(error)") in: \(statement.prefix(120))")
                        throw error
                    }
                }
            }
            let prices = try await client.query("SELECT count(*) FROM prices").storageTestInts()
            #expect(prices == [100])
        }
    }

    /// The tricky constructs above are not only split as expected but are valid SQL once split.
    @Test func trickyScriptExecutes() async throws {
        let script = #"""
            -- leading comment; with 'quote
            CREATE TABLE "we;ird" ("a""b;" text);
            /* block /* nested; */ comment; */
            INSERT INTO "we;ird" VALUES ('it''s; fine'), ($$dollar; 'quoted'$$), ($tag$ $$ ; $tag$);
            CREATE FUNCTION semi() RETURNS text LANGUAGE plpgsql AS $fn$
            BEGIN
                RETURN 'a;b'; -- inside; body
            END;
            $fn$;
            INSERT INTO "we;ird" SELECT semi()  -- trailing, no semicolon
            """#
        let statements = Self.split(script)
        #expect(statements.count == 4)
        try await withTestDatabase { client, _ in
            for statement in statements { try await client.query(PostgresQuery(unsafeSQL: statement)) }
            var values: [String] = []
            for try await value in try await client.query(#"SELECT "a""b;" FROM "we;ird" ORDER BY 1"#).decode(String.self) {
                values.append(value)
            }
            #expect(values.sorted() == [" $$ ; ", "a;b", "dollar; 'quoted'", "it's; fine"].sorted())
        }
    }

    /// A chunk holding only a block comment is kept as a "statement"; it must still execute.
    @Test func commentOnlyChunksExecute() async throws {
        let statements = Self.split("SELECT 1; /* done; */\n-- bye")
        try await withTestDatabase { client, _ in
            for statement in statements { try await client.query(PostgresQuery(unsafeSQL: statement)) }
        }
    }
}

/// Paths shared by the storage test files.
enum StorageTestPaths {
    /// The repository root (…/Tests/TollgateStorageTests/ThisFile.swift → …).
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let migrations = repoRoot.appendingPathComponent("migrations")
}

extension PostgresRowSequence {
    func storageTestInts() async throws -> [Int] {
        var result: [Int] = []
        for try await value in decode(Int.self) { result.append(value) }
        return result
    }
}

import Logging
import TollgateStorage

extension TestPostgres {
    /// A database with every migration of this build applied, prepared once per process; tests
    /// clone it (`makeDatabase(template:)`) instead of migrating each time.
    public func migratedTemplate() async throws -> String {
        try await templateDatabase(named: "tollgate_migrated") { client in
            try await MigrationRunner(client: client, migrations: try Migration.bundled(), logger: Logger(label: "migrate")).migrate()
        }
    }
}

import TollgateAdminAPI
import TollgateStorage

extension AdminAPI {
    func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        .ok(.init(body: .json(.init(status: .ok))))
    }

    /// Ready when the database answers and every migration this build knows is applied.
    func getReadiness(_ input: Operations.GetReadiness.Input) async throws -> Operations.GetReadiness.Output {
        let runner = MigrationRunner(client: database.client, migrations: migrations, logger: logger)
        do {
            let status = try await runner.status()
            guard status.isCurrent else {
                return .serviceUnavailable(.init(body: .json(.init(
                    status: .unavailable, database: "ok", migrations: "pending: \(status.pending.joined(separator: ", "))"))))
            }
            return .ok(.init(body: .json(.init(status: .ok, database: "ok", migrations: "current"))))
        } catch let error as MigrationError {
            return .serviceUnavailable(.init(body: .json(.init(status: .unavailable, database: "ok", migrations: "\(error)"))))
        } catch {
            return .serviceUnavailable(.init(body: .json(.init(status: .unavailable, database: "unreachable"))))
        }
    }
}

import ArgumentParser
import Foundation
import OpenAPIRuntime
import PostgresNIO

/// Parses and runs one `tollgate` invocation and returns its exit code. The executable calls this
/// with the real process environment; tests call it in-process with captured streams.
public enum TollgateRunner {
    public static func run(_ arguments: [String], environment: CLIEnvironment) async -> Int32 {
        await CLIEnvironment.$current.withValue(environment) {
            do {
                var command = try Tollgate.parseAsRoot(arguments)
                if var asyncCommand = command as? any AsyncParsableCommand {
                    try await asyncCommand.run()
                } else {
                    try command.run()
                }
                return CLIExitCode.ok
            } catch {
                return report(error, environment: environment)
            }
        }
    }

    static func report(_ error: any Error, environment: CLIEnvironment) -> Int32 {
        switch error {
        case let error as CLIError:
            environment.err("error: \(error.message)\n")
            return error.code
        case let error as ClientError:
            let mapped = classify(error, adminURL: error.baseURL?.absoluteString ?? "?")
            environment.err("error: \(mapped.message)\n")
            return mapped.code
        case let error as PSQLError:
            let unreachable = error.code == .connectionError || error.code == .serverClosedConnection
                || error.code == .clientClosedConnection
            environment.err("error: database: \(oneLine(String(reflecting: error)))\n")
            return unreachable ? CLIExitCode.unreachable : CLIExitCode.failure
        default:
            let code = Tollgate.exitCode(for: error)
            let message = Tollgate.fullMessage(for: error)
            if code == .success {
                // --help, --generate-completion-script, help: their text goes to stdout.
                if !message.isEmpty { environment.out(message.hasSuffix("\n") ? message : message + "\n") }
                return CLIExitCode.ok
            }
            if !message.isEmpty { environment.err(message.hasSuffix("\n") ? message : message + "\n") }
            // ArgumentParser reports usage errors as EX_USAGE (64); the CLI's documented code is 2.
            return code == .validationFailure ? CLIExitCode.usage : code.rawValue
        }
    }
}

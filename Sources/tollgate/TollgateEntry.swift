import Foundation
import TollgateCLI

/// `tollgate`, the admin CLI. The commands live in TollgateCLI so tests can run them in-process;
/// this entry point runs them against the real process (environment, stdin/stdout/stderr, terminal)
/// and exits with the CLI's documented exit code.
@main
enum TollgateEntry {
    static func main() async {
        let code = await TollgateRunner.run(Array(CommandLine.arguments.dropFirst()), environment: .process())
        exit(code)
    }
}

import ArgumentParser
import TollgateCLI

/// `tollgate`, the admin CLI. The commands live in TollgateCLI so tests can run them in-process;
/// this entry point only re-exposes that command tree.
@main
struct TollgateEntry: AsyncParsableCommand {
    static let configuration = Tollgate.configuration
}

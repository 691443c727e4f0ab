import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything a command touches outside its arguments: environment variables, standard streams and
/// the terminal. The executable uses `process()`; tests pass their own (captured streams, a scripted
/// stdin, a private config path), so commands never reach for process-global state and tests can run
/// in parallel.
public struct CLIEnvironment: Sendable {
    /// Environment variables (`TOLLGATE_ADMIN_URL`, `TOLLGATE_ADMIN_TOKEN`, `TOLLGATE_CONFIG`, `HOME`, `NO_COLOR`, …).
    public var variables: [String: String]
    /// Writes to standard output.
    public var standardOutput: @Sendable (Data) -> Void
    /// Writes to standard error.
    public var standardError: @Sendable (Data) -> Void
    /// Reads all of standard input (used when it is not a terminal).
    public var readStandardInput: @Sendable () -> Data
    /// Prompts on the terminal and reads one line with echo off; nil when there is no terminal.
    public var readSecretFromTerminal: @Sendable (_ prompt: String) -> String?
    public var standardOutputIsTerminal: Bool
    public var standardInputIsTerminal: Bool

    public init(
        variables: [String: String],
        standardOutput: @escaping @Sendable (Data) -> Void,
        standardError: @escaping @Sendable (Data) -> Void,
        readStandardInput: @escaping @Sendable () -> Data = { Data() },
        readSecretFromTerminal: @escaping @Sendable (String) -> String? = { _ in nil },
        standardOutputIsTerminal: Bool = false,
        standardInputIsTerminal: Bool = false
    ) {
        self.variables = variables
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.readStandardInput = readStandardInput
        self.readSecretFromTerminal = readSecretFromTerminal
        self.standardOutputIsTerminal = standardOutputIsTerminal
        self.standardInputIsTerminal = standardInputIsTerminal
    }

    /// The real process: its environment, file descriptors 0/1/2 and the controlling terminal.
    public static func process() -> CLIEnvironment {
        CLIEnvironment(
            variables: ProcessInfo.processInfo.environment,
            standardOutput: { FileHandle.standardOutput.write($0) },
            standardError: { FileHandle.standardError.write($0) },
            readStandardInput: { FileHandle.standardInput.readDataToEndOfFile() },
            readSecretFromTerminal: { Terminal.readLineWithoutEcho(prompt: $0) },
            standardOutputIsTerminal: isatty(STDOUT_FILENO) == 1,
            standardInputIsTerminal: isatty(STDIN_FILENO) == 1)
    }

    /// The environment of the running command.
    @TaskLocal public static var current: CLIEnvironment = .process()

    // MARK: Conveniences

    func out(_ text: String) { standardOutput(Data(text.utf8)) }
    func err(_ text: String) { standardError(Data(text.utf8)) }

    /// Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org) or `TERM=dumb`.
    var colorEnabled: Bool {
        guard standardOutputIsTerminal else { return false }
        if let noColor = variables["NO_COLOR"], !noColor.isEmpty { return false }
        return variables["TERM"] != "dumb"
    }
}

/// Prints a line on the command's standard output.
func say(_ text: String) { CLIEnvironment.current.out(text + "\n") }
/// Prints a line on the command's standard error (notes, warnings, errors).
func warn(_ text: String) { CLIEnvironment.current.err(text + "\n") }

enum Terminal {
    /// Prompts on stderr and reads a line from stdin with terminal echo turned off (termios), restoring
    /// the previous settings afterwards.
    static func readLineWithoutEcho(prompt: String) -> String? {
        FileHandle.standardError.write(Data(prompt.utf8))
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { return nil }
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        silent.c_lflag |= tcflag_t(ICANON)
        guard tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent) == 0 else { return nil }
        defer {
            _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine(strippingNewline: true)
    }
}

/// Reads a secret (a Mistral API key, an admin token) without ever taking it from argv: from standard
/// input when it is not a terminal (`… < key.txt`, `pass show x | …`), else from an interactive prompt
/// with echo off. Surrounding whitespace and the trailing newline are removed.
func readSecret(prompt: String, what: String) throws -> String {
    let env = CLIEnvironment.current
    let text: String
    if env.standardInputIsTerminal {
        guard let line = env.readSecretFromTerminal(prompt) else {
            throw CLIError.usage("Could not read the \(what) from the terminal")
        }
        text = line
    } else {
        text = String(decoding: env.readStandardInput(), as: UTF8.self)
    }
    let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !secret.isEmpty else {
        throw CLIError.usage("No \(what) on standard input: pipe it in (e.g. `< key.txt`) or run in a terminal to be prompted")
    }
    guard !secret.contains(where: \.isNewline) else {
        throw CLIError.usage("The \(what) on standard input must be a single line")
    }
    return secret
}

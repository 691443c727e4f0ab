import Foundation
import PackagePlugin

/// Embeds the repository's plain files into the binaries that need them, so a deployed executable
/// is self-contained (no resource bundle to lose):
/// - TollgateStorage gets `migrations/*.sql` as `EmbeddedMigrations.files`;
/// - TollgateAdmin gets `admin/openapi.yaml` as `EmbeddedSpecification.yaml`.
@main
struct EmbedFiles: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let root = context.package.directoryURL
        let (name, inputs): (String, [URL])
        switch target.name {
        case "TollgateStorage":
            let dir = root.appending(path: "migrations")
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
                .filter { $0.hasSuffix(".sql") }.sorted().map { dir.appending(path: $0) }
            (name, inputs) = ("EmbeddedMigrations", files)
        case "TollgateAdmin":
            (name, inputs) = ("EmbeddedSpecification", [root.appending(path: "admin/openapi.yaml")])
        default:
            return []
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "\(name).swift")
        return [.buildCommand(
            displayName: "Embedding \(inputs.count) file(s) into \(target.name)",
            executable: try context.tool(named: "EmbedFilesTool").url,
            arguments: [name, output.path] + inputs.map(\.path),
            inputFiles: inputs,
            outputFiles: [output])]
    }
}

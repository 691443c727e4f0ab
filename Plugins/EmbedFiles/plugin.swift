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
        let (name, sources, inputs): (String, [URL], [URL])
        switch target.name {
        case "TollgateStorage":
            // The folder is passed, not its files: this runs only when SwiftPM plans the build,
            // which adding a file to migrations/ does not cause, so the tool lists the folder when
            // it runs. The folder is an input too: adding or removing a file changes it.
            let dir = root.appending(path: "migrations")
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
                .filter { $0.hasSuffix(".sql") }.sorted().map { dir.appending(path: $0) }
            (name, sources, inputs) = ("EmbeddedMigrations", [dir], [dir] + files)
        case "TollgateAdmin":
            let spec = root.appending(path: "admin/openapi.yaml")
            (name, sources, inputs) = ("EmbeddedSpecification", [spec], [spec])
        default:
            return []
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "\(name).swift")
        return [.buildCommand(
            displayName: "Embedding \(name) into \(target.name)",
            executable: try context.tool(named: "EmbedFilesTool").url,
            arguments: [name, output.path] + sources.map(\.path),
            inputFiles: inputs,
            outputFiles: [output])]
    }
}

import ArgumentParser
import Tessera

@main
struct TesseraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Late-interaction (multi-vector) search: index, search, evaluate, benchmark, serve.",
        version: TesseraVersion.current,
        subcommands: [
            DemoCommand.self, IndexCommand.self, SearchCommand.self, EvalCommand.self, InfoCommand.self,
            BenchCommand.self, ServeCommand.self, QueryCommand.self, ListCommand.self, DeleteCommand.self,
            OptimizeCommand.self, VerifyCommand.self, IndexPayloadCommand.self, ImportCommand.self, ClusterCommand.self,
        ]
    )
}

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks (release builds only give meaningful numbers).",
        subcommands: [
            BenchKernelCommand.self, BenchEncoderCommand.self, BenchSearchCommand.self, BenchExportCommand.self,
        ]
    )
}

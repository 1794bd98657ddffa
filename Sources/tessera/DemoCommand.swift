import ArgumentParser
import Foundation

/// `tessera demo`: the search demo (default) and the kernel tour.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Demonstrations: search over the bundled sample passages (default), or the kernels alone.",
        subcommands: [SearchDemoCommand.self, KernelDemoCommand.self],
        defaultSubcommand: SearchDemoCommand.self
    )
}

/// `tessera demo search`: indexes the sample passages that ship with Tessera, searches them with explanations,
/// evaluates them against their judgements, and says what to run next. Every step is an ordinary CLI command,
/// printed before it runs.
struct SearchDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Indexes the bundled sample passages, runs explained searches and a small evaluation."
    )

    @Option(help: "The folder holding collections; the demo (re)builds the collection 'demo' in it.")
    var data = "collections"

    @Option(help: "The sample corpus, a BEIR folder (default: the repository's Samples).")
    var samples = bundledPath("Samples")

    @Option(help: "The model folder (Hugging Face layout).")
    var model = defaultModelDirectory

    @Option(help: "Threads for encoding and scoring (default: every core).")
    var threads: Int?

    func run() async throws {
        guard FileManager.default.fileExists(atPath: samples + "/corpus.jsonl") else {
            throw CommandError("no \(samples)/corpus.jsonl; pass --samples")
        }
        let collection = URL(fileURLWithPath: data).appendingPathComponent("demo").path
        if FileManager.default.fileExists(atPath: collection) {
            try FileManager.default.removeItem(atPath: collection)
        }
        var common = ["--data", data, "--model", model]
        if let threads { common += ["--threads", String(threads)] }

        try await step(IndexCommand.self, ["demo", "--beir", samples] + common)
        try await step(InfoCommand.self, ["demo", "--data", data])
        for query in ["how do volcanoes form", "what happens at the event horizon of a black hole"] {
            try await step(SearchCommand.self, ["demo", query, "--limit", "2", "--explain"] + common)
        }
        try await step(
            SearchCommand.self,
            [
                "demo", "bread made with wild yeast", "--limit", "3", "--filter",
                #"{"must":[{"key":"topic","match":{"value":"cooking"}}]}"#,
            ]
                + common
        )
        try await step(
            SearchCommand.self,
            [
                "demo", "how the moon moves the sea", "--limit", "3", "--filter",
                #"{"must":[{"key":"year","range":{"gte":1990}}]}"#,
            ]
                + common
        )
        try await step(EvalCommand.self, ["demo", "--beir", samples] + common)
        print(
            """
            next:
              tessera search demo "your question" --explain            search the sample collection
              tessera index scifact --beir ../shared/ir-data/scifact    index a BEIR corpus (resumable)
              tessera eval scifact --beir ../shared/ir-data/scifact     nDCG@10, Recall@100, MRR@10, latency
              make test                                                 the test suite
              make bench-kernel, make bench-encoder, make eval-beir     benchmarks (see the README)
            (the tessera binary is .build/release/tessera)
            """
        )
    }

    private func step<Command: AsyncParsableCommand>(_ command: Command.Type, _ arguments: [String]) async throws {
        let shown = arguments.map { $0.contains(" ") || $0.contains("{") ? "'\($0)'" : $0 }
        print("$ tessera \(Command.configuration.commandName ?? "") \(shown.joined(separator: " "))")
        var parsed = try Command.parse(arguments)
        try await parsed.run()
        print("")
    }
}

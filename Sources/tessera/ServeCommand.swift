import ArgumentParser
import Foundation
import Logging
import Tessera
import TesseraCluster
import TesseraServer

/// `tessera serve`: the Qdrant-compatible REST subset over the collections in a data directory.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serves the collections in --data over a Qdrant-compatible REST API.",
        discussion: """
            Prints 'listening on HOST:PORT' once it accepts connections. SIGINT or SIGTERM stop it after the \
            requests in flight. {"text": …} queries and documents for a vector field are encoded with the model \
            and profile its collection was built with (found by content hash: --model first, then the folder \
            the collection recorded); --model also encodes the fields that record no encoder.
            """
    )

    @Option(help: "The folder holding collections (one subfolder each).")
    var data = "collections"

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port (0: any free port).")
    var port = 6333

    @Option(help: "Require this key in the api-key header (or Authorization: Bearer).")
    var apiKey: String?

    @Option(help: "The largest request body, in MiB.")
    var maxBodyMib = 32

    @Option(help: "Threads for MaxSim scoring per query.")
    var threads = 1

    @Option(help: "Arithmetic for every field: f32, bf16 (AVX512_BF16) or int8. Default: each field's own.")
    var precision: PrecisionChoice?

    @Option(
        help: "A model folder (Hugging Face layout) for text queries and documents of fields that record no encoder."
    )
    var model: String?

    @Option(help: "Close a connection on which nothing arrives for this many seconds.")
    var idleTimeout = 30

    @Option(help: "Close a connection whose client takes longer than this many seconds to send a whole request.")
    var requestTimeout = 60

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "Cluster mode: etcd's client URL (http://HOST:PORT). Collections are sharded over the nodes.")
    var cluster: String?

    @Option(help: "This node's id in the cluster: a positive integer, unique among the nodes (with --cluster).")
    var nodeId: UInt64?

    @Option(help: "Where the other nodes reach this one, http://HOST:PORT (default: the address and port bound).")
    var advertise: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port is 0...65535") }
        guard maxBodyMib >= 1 else { throw ValidationError("--max-body-mib must be at least 1") }
        guard idleTimeout >= 1, requestTimeout >= 1 else {
            throw ValidationError("--idle-timeout and --request-timeout are at least 1 second")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level") }
        if cluster != nil {
            guard let nodeId, nodeId >= 1 else {
                throw ValidationError("--cluster needs --node-id, a positive integer")
            }
        } else if nodeId != nil || advertise != nil {
            throw ValidationError("--node-id and --advertise need --cluster")
        }
        do {
            _ = try cluster.map(HTTPEndpoint.init(parsing:))
            _ = try advertise.map(HTTPEndpoint.init(parsing:))
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() async throws {
        var logger = Logger(label: "tessera.serve")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        // Each collection's text is encoded with the model and profile it was built with (checked by content
        // hash); --model serves the collections that record no encoder.
        let encoder = EncoderCatalog(
            defaultModelDirectory: model,
            threadCount: threads,
            precision: precision?.precision
        )
        var options = ServerOptions(
            dataDirectory: data,
            host: host,
            port: port,
            apiKey: apiKey,
            maximumBodyBytes: maxBodyMib << 20,
            threadCount: threads,
            encoder: encoder,
            documentEncoder: encoder
        )
        options.idleTimeout = .seconds(idleTimeout)
        options.requestReadTimeout = .seconds(requestTimeout)
        if let cluster, let nodeId {
            options.cluster = ClusterOptions(
                etcd: try HTTPEndpoint(parsing: cluster),
                nodeID: nodeId,
                advertise: try advertise.map(HTTPEndpoint.init(parsing:)),
                apiKey: apiKey
            )
        }
        let host = self.host
        try await runServer(options: options, logger: logger) { port in
            FileHandle.standardOutput.write(Data("listening on \(host):\(port)\n".utf8))
        }
    }
}

import ArgumentParser
import Foundation
import Tessera
import TesseraCluster

/// `tessera cluster`: looks at a cluster through one of its nodes.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Looks at a cluster of `tessera serve --cluster` nodes.",
        subcommands: [ClusterStatusCommand.self]
    )
}

/// `tessera cluster status`: the peers, and every collection's shards with their replicas' states, as the node
/// at --url sees them (its GET /cluster and GET /collections/{name}/cluster).
struct ClusterStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Prints the peers and each collection's shards and replica states."
    )

    @Option(help: "A node's REST address, http://HOST:PORT.")
    var url = "http://127.0.0.1:6333"

    @Option(help: "The API key the nodes require.")
    var apiKey: String?

    func run() async throws {
        let endpoint = try HTTPEndpoint(parsing: url)
        let http = PeerHTTPClient()
        let headers = apiKey.map { [("api-key", $0)] } ?? []
        func get(_ path: String) async throws -> JSONValue {
            let reply = try await http.get(endpoint, path, headers: headers, timeout: .seconds(10))
            let json = try JSONValue.parse(utf8: reply.body)
            guard reply.status == 200, let result = json.objectValue?["result"] else {
                let message =
                    json.objectValue?["status"]?.objectValue?["error"]?.stringValue ?? "status \(reply.status)"
                throw ValidationError("\(url)\(path): \(message)")
            }
            return result
        }
        let cluster = try await get("/cluster")
        guard cluster.objectValue?["status"]?.stringValue == "enabled" else {
            print("cluster: disabled (\(url) serves collections on one node)")
            return
        }
        let me = cluster.objectValue?["peer_id"]?.intValue ?? 0
        let revision = cluster.objectValue?["raft_info"]?.objectValue?["commit"]?.intValue ?? 0
        print("cluster: enabled; asked peer \(me); etcd revision \(revision)")
        let peers = cluster.objectValue?["peers"]?.objectValue ?? [:]
        for (id, peer) in peers.sortedMembers.sorted(by: { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }) {
            print("peer \(id)  \(peer.objectValue?["uri"]?.stringValue ?? "?")")
        }
        let collections = try await get("/collections").objectValue?["collections"]?.arrayValue ?? []
        for name in collections.compactMap({ $0.objectValue?["name"]?.stringValue }) {
            let info = try await get("/collections/\(name)/cluster")
            let object = info.objectValue ?? [:]
            var replicas: [Int: [String]] = [:]
            for shard in object["local_shards"]?.arrayValue ?? [] {
                guard let fields = shard.objectValue, let id = fields["shard_id"]?.intValue else { continue }
                let points = fields["points_count"]?.intValue ?? 0
                replicas[id, default: []].append(
                    "peer \(me) \(fields["state"]?.stringValue ?? "?") (\(points) points)"
                )
            }
            for shard in object["remote_shards"]?.arrayValue ?? [] {
                guard let fields = shard.objectValue, let id = fields["shard_id"]?.intValue else { continue }
                let peer = fields["peer_id"]?.intValue ?? 0
                replicas[id, default: []].append("peer \(peer) \(fields["state"]?.stringValue ?? "?")")
            }
            print("collection \(name): \(object["shard_count"]?.intValue ?? 0) shards")
            for (shard, list) in replicas.sorted(by: { $0.key < $1.key }) {
                print("  \(name) shard \(shard): " + list.joined(separator: ", "))
            }
            for transfer in object["shard_transfers"]?.arrayValue ?? [] {
                guard let fields = transfer.objectValue else { continue }
                print(
                    "  transfer of shard \(fields["shard_id"]?.intValue ?? 0): peer \(fields["from"]?.intValue ?? 0) "
                        + "→ peer \(fields["to"]?.intValue ?? 0)"
                )
            }
        }
    }
}

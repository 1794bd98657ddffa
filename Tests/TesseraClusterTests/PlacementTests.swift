import Foundation
import NIOCore
import NIOHTTP1
import Tessera
import Testing

@testable import TesseraCluster

@Suite struct PlacementTests {
    @Test func replicasOfAShardAreOnDistinctNodesAndSpreadEvenly() throws {
        let placement = try Placement.place(shards: 3, replicas: 2, nodes: [30, 10, 20])
        #expect(placement == [[10, 20], [20, 30], [30, 10]])
        let load = Dictionary(grouping: placement.flatMap { $0 }, by: { $0 }).mapValues(\.count)
        #expect(load == [10: 2, 20: 2, 30: 2])
        for shard in placement { #expect(Set(shard).count == shard.count) }
    }

    @Test func moreReplicasThanNodesIsRefused() {
        #expect(throws: ClusterError.self) { try Placement.place(shards: 2, replicas: 3, nodes: [1, 2]) }
        #expect(throws: ClusterError.self) { try Placement.place(shards: 0, replicas: 1, nodes: [1]) }
    }

    @Test func pointsSpreadOverShardsDeterministically() {
        var counts = [0, 0, 0]
        for id in 0..<3000 as Range<UInt64> { counts[Placement.shard(of: .integer(id), shards: 3)] += 1 }
        // Every shard gets a fair share (FNV-1a over the id's bytes).
        for count in counts { #expect(count > 800 && count < 1200, "\(counts)") }
        let uuid = PointID.uuid(UUID(uuidString: "550e8400-e29b-41d4-a716-446655440000")!)
        #expect(Placement.shard(of: uuid, shards: 7) == Placement.shard(of: uuid, shards: 7))
        // The rule is fixed (a change would move every stored point): FNV-1a of 42's 8 bytes little-endian is
        // 0xff3add6b3789daef (computed independently).
        #expect(Placement.shard(of: .integer(42), shards: 1000) == Int(0xff3a_dd6b_3789_daef as UInt64 % 1000))
    }

    @Test func shardCollectionNamesRoundTrip() {
        let name = ClusterKeys.shardCollection("docs__shard_x", 12)
        #expect(ClusterKeys.parseShardCollection(name)?.collection == "docs__shard_x")
        #expect(ClusterKeys.parseShardCollection(name)?.shard == 12)
        #expect(ClusterKeys.parseShardCollection("docs") == nil)
    }

    @Test func endpointsParseOrSayWhy() throws {
        #expect(try HTTPEndpoint(parsing: "http://127.0.0.1:2379") == HTTPEndpoint(host: "127.0.0.1", port: 2379))
        #expect(try HTTPEndpoint(parsing: "http://node-1:6333/").port == 6333)
        for bad in ["127.0.0.1:2379", "https://a:1", "http://a", "http://a:0", "http://a:1/x"] {
            #expect(throws: ClusterError.self) { try HTTPEndpoint(parsing: bad) }
        }
    }

    @Test func recordsRoundTripThroughTheirJSON() throws {
        var record = CollectionRecord(
            name: "docs",
            configuration: ["vectors": ["size": 4, "distance": "Dot"]],
            shardNumber: 2,
            replicationFactor: 2,
            writeConsistencyFactor: 1,
            placement: [[1, 2], [2, 1]]
        )
        record.schemaChanges = [SchemaChange(method: .PUT, suffix: "/index", body: Array(#"{"field_name":"a"}"#.utf8))]
        #expect(CollectionRecord(record.json) == record)
        let node = NodeRecord(id: 7, url: HTTPEndpoint(host: "h", port: 1))
        #expect(NodeRecord(node.json) == node)
    }
}

@Suite struct ClusterViewTests {
    @Test func watchEventsKeepTheViewCurrent() throws {
        var view = ClusterView()
        let node = NodeRecord(id: 3, url: HTTPEndpoint(host: "127.0.0.1", port: 7000))
        view.apply(
            .put(EtcdKeyValue(key: ClusterKeys.node(3), value: node.json.jsonBytes, createRevision: 2, modRevision: 2))
        )
        view.apply(
            .put(
                EtcdKeyValue(
                    key: ClusterKeys.replica("docs", 1, 3),
                    value: Array("Dead".utf8),
                    createRevision: 3,
                    modRevision: 5
                )
            )
        )
        #expect(view.nodes[3] == node)
        #expect(view.state("docs", 1, 3) == .dead)
        view.apply(.delete(key: ClusterKeys.node(3), revision: 6))
        #expect(view.nodes.isEmpty)
        #expect(view.state("docs", 0, 3) == nil)
    }

    @Test func streamedLinesSplitAcrossChunks() {
        let splitter = LineSplitter()
        #expect(splitter.feed(.init(string: "{\"a\":1}\n{\"b\"")) == [Array("{\"a\":1}".utf8)])
        #expect(splitter.feed(.init(string: ":2}\n")) == [Array("{\"b\":2}".utf8)])
        #expect(splitter.feed(.init(string: "")) == [])
    }
}

@Suite struct MergeTests {
    func point(_ id: Int64, _ score: Double) -> JSONValue { ["id": .integer(id), "score": .double(score)] }

    @Test func shardListsMergeAsOneRankedList() {
        let merged = ClusterRouter.merge([point(1, 0.9), point(2, 0.5), point(3, 0.7), point(4, 0.5)], .descending)
        #expect(merged.compactMap { $0.objectValue?["id"]?.intValue } == [1, 3, 2, 4])
        let distances = ClusterRouter.merge([point(1, 3), point(2, 1), point(3, 2)], .ascending)
        #expect(distances.compactMap { $0.objectValue?["id"]?.intValue } == [2, 3, 1])
        let byID = ClusterRouter.merge([point(9, 0), point(2, 0), point(5, 0)], .byID)
        #expect(byID.compactMap { $0.objectValue?["id"]?.intValue } == [2, 5, 9])
    }

    @Test func euclidFieldsRankByDistance() {
        let record = CollectionRecord(
            name: "c",
            configuration: [
                "vectors": ["near": ["size": 2, "distance": "Euclid"], "dot": ["size": 2, "distance": "Dot"]]
            ],
            shardNumber: 1,
            replicationFactor: 1,
            writeConsistencyFactor: 1,
            placement: [[1]]
        )
        let euclid = ClusterRouter.order(of: [1, 2], ["using": "near"], record)
        let dot = ClusterRouter.order(of: [1, 2], ["using": "dot"], record)
        guard case .ascending = euclid, case .descending = dot else {
            Issue.record("Euclid ranks ascending, Dot descending: \(euclid), \(dot)")
            return
        }
    }

    @Test func queriesByIDAreRecognised() {
        #expect(ClusterRouter.exampleID(42) == 42)
        #expect(ClusterRouter.exampleID(["nearest": "550e8400-e29b-41d4-a716-446655440000"]) != nil)
        #expect(ClusterRouter.exampleID([0.1, 0.2]) == nil)
        #expect(ClusterRouter.mentionsIDs(["recommend": ["positive": [1, [0.1, 0.2]]]]))
        #expect(!ClusterRouter.mentionsIDs(["recommend": ["positive": [[0.1, 0.2]]]]))
    }
}

@Suite struct RawMembersTests {
    @Test func aTopLevelMemberIsFoundByItsBytes() throws {
        let text = #"{"limit": 3, "query" : [[1, 2.5e-3], [3, "a\"]}"]], "x": {"query": 1}}"#
        let bytes = Array(text.utf8)
        let found = try #require(RawMembers.value(of: "query", in: bytes))
        #expect(String(decoding: found, as: UTF8.self) == #"[[1, 2.5e-3], [3, "a\"]}"]]"#)
        #expect(RawMembers.value(of: "missing", in: bytes) == nil)
        #expect(RawMembers.value(of: "query", in: Array(#"{"query": 1, "query": 2}"#.utf8)) == nil)
        #expect(RawMembers.value(of: "query", in: Array("[1]".utf8)) == nil)
        // A shard's body splices the bytes back: it reads as the object with its other members changed.
        var object = try #require(try JSONValue.parse(text).objectValue)
        object["limit"] = 13
        let spliced = try JSONValue.parse(utf8: ClusterRouter.shardBody(object, rawQuery: found))
        #expect(spliced == .object(object))
        let alone = try JSONValue.parse(utf8: ClusterRouter.shardBody(["query": [1]], rawQuery: Array("[1]".utf8)[...]))
        #expect(alone == ["query": [1]])
    }
}

import TesseraPlatform
import Testing

@testable import Tessera

/// Scrolls ordered by payload values (Qdrant's `order_by`) and the date-times they read.
@Suite("Ordered scroll")
struct OrderByTests {
    @Test("date-times read as microseconds since the epoch, UTC unless an offset is given")
    func dateTimes() {
        #expect(PayloadIndexType.dateTimeMicroseconds("1970-01-01") == 0)
        #expect(PayloadIndexType.dateTimeMicroseconds("2026-01-01T00:00:00Z") == 1_767_225_600_000_000)
        #expect(PayloadIndexType.dateTimeMicroseconds("2026-01-01 00:00") == 1_767_225_600_000_000)
        #expect(PayloadIndexType.dateTimeMicroseconds("2026-01-01T02:00:00+02:00") == 1_767_225_600_000_000)
        #expect(PayloadIndexType.dateTimeMicroseconds("1969-12-31T23:59:59.5Z") == -500_000)
        #expect(PayloadIndexType.dateTimeMicroseconds("2000-02-29T00:00:00.1234567") == 951_782_400_123_456)
        for bad in ["2026-13-01", "2026-01-01T25:00", "2026-01-01Tx", "yesterday", "2026-01-01T00:00Z+"] {
            #expect(PayloadIndexType.dateTimeMicroseconds(bad) == nil, "\(bad)")
        }
    }

    @Test("points are listed once per distinct value, in either direction, from start_from, filtered")
    func ordered() throws {
        var random = SplitMix64.printed("ordered")
        try withCollectionPath { path in
            let store = try CollectionStore.create(at: path, configuration: CollectionStoreTests.configuration)
            let prices: [JSONValue] = [5, 2.5, [7, 1, 7], "2026-01-01", true, .null, 3]
            try store.upsert(
                prices.enumerated().map { index, price in
                    var point = CollectionStoreTests.point(UInt64(index), using: &random)
                    point.payload["price"] = price
                    return point
                }
            )
            func listed(_ order: OrderBy, filter: Filter? = nil, limit: Int = 20) throws -> [String] {
                try store.scroll(orderedBy: order, filter: filter, limit: limit).map {
                    "\($0.record.id):\($0.orderValue.jsonValue)"
                }
            }
            let price = try PayloadKey("price")
            #expect(try listed(OrderBy(key: price)) == ["2:1", "1:2.5", "6:3", "0:5", "2:7", "3:1767225600000000"])
            #expect(
                try listed(OrderBy(key: price, direction: .descending), limit: 3) == [
                    "3:1767225600000000", "2:7", "0:5",
                ]
            )
            #expect(
                try listed(OrderBy(key: price, startFrom: .double(2.5))) == [
                    "1:2.5", "6:3", "0:5", "2:7", "3:1767225600000000",
                ]
            )
            #expect(
                try listed(OrderBy(key: price, direction: .descending, startFrom: .integer(3))) == [
                    "6:3", "1:2.5", "2:1",
                ]
            )
            let even = try Filter(json: #"{"must": {"key": "n", "match": {"any": [0, 2, 4, 6]}}}"#)
            #expect(try listed(OrderBy(key: price), filter: even) == ["2:1", "6:3", "0:5", "2:7"])
            #expect(throws: TesseraError.self) { try store.scroll(orderedBy: OrderBy(key: price), limit: 0) }
            try store.close()
        }
    }
}

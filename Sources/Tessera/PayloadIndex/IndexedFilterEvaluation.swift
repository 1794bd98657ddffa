/// What one filter evaluation did: index lookups, payloads checked, and full scans (for tests and timings).
public struct FilterEvaluationStatistics: Sendable, Hashable {
    /// Conditions answered from a payload index (or `has_id` from the id map).
    public var indexLookups = 0
    /// Payloads checked against a condition or a whole filter.
    public var payloadChecks = 0
    /// Filters (or nested filters) evaluated by checking every candidate's payload against the whole filter.
    public var fullScans = 0

    /// Creates empty counters.
    public init() {}
}

/// Evaluates a filter over a scoring view with the payload indexes that have caught up with it, with a
/// cardinality-based plan in the manner of Qdrant's query planner.
///
/// For each clause of a filter, a condition that an index (or the id map, for `has_id`) answers is looked up when
/// the lookup is estimated to cost less than checking the condition on the current candidates' payloads
/// (``PayloadFieldIndex/estimate(_:)``); `must` conditions are taken smallest estimate first, each narrowing the
/// candidates the next is compared against. What no index answers is checked on the payloads of the candidates
/// that survive (a filtered scan). A filter of which no condition has an index is one full scan, as before.
/// Every path gives exactly the slots that ``Filter/matches(payload:id:)`` passes.
struct IndexedFilterEvaluator {
    let view: ScoringView
    /// The indexes by key text.
    let indexes: [String: PayloadFieldIndex]
    var statistics = FilterEvaluationStatistics()

    /// The live slots passing `filter`.
    mutating func allowedSlots(_ filter: Filter) -> SlotBitmap {
        resolve(filter, within: view.liveSlots, count: view.liveCount)
    }

    /// A condition that an index answers, with the estimate of its lookup.
    private struct Answer {
        var condition: Condition
        var cardinality: Int
        var cost: Double
        var lookup: PayloadFieldIndex.Lookup?
        var index: PayloadFieldIndex?
    }

    private func answer(_ condition: Condition) -> Answer? {
        if case .hasID(let ids) = condition {
            return Answer(condition: condition, cardinality: ids.count, cost: Double(ids.count) / 16)
        }
        let key: PayloadKey
        switch condition {
        case .field(let field): key = field.key
        case .isEmpty(let conditionKey), .isNull(let conditionKey), .valuesCount(let conditionKey, _):
            key = conditionKey
        default: return nil
        }
        guard let index = indexes[key.text], let lookup = index.lookup(for: condition) else { return nil }
        let (cardinality, cost) = index.estimate(lookup)
        return Answer(condition: condition, cardinality: cardinality, cost: cost, lookup: lookup, index: index)
    }

    private mutating func slots(_ answer: Answer) -> SlotBitmap {
        statistics.indexLookups += 1
        if let lookup = answer.lookup, let index = answer.index {
            return index.slots(
                lookup,
                condition: answer.condition,
                view: view,
                payloadChecks: &statistics.payloadChecks
            )
        }
        guard case .hasID(let ids) = answer.condition else { preconditionFailure("an answer without a lookup") }
        var result = SlotBitmap(slotCount: view.slotCount)
        for id in ids {
            if let slot = view.slot(of: id) { result.insert(slot) }
        }
        return result
    }

    /// Whether some condition of `filter`, at any depth of filters used as conditions, has an index.
    private func usesIndex(_ filter: Filter) -> Bool {
        let conditions = filter.must + filter.should + filter.mustNot + (filter.minShould?.conditions ?? [])
        return conditions.contains { condition in
            if case .filter(let inner) = condition { return usesIndex(inner) }
            return answer(condition) != nil
        }
    }

    /// The slots of `candidates` whose payloads pass `test`.
    private mutating func scan(_ candidates: SlotBitmap, _ test: (JSONObject, PointID) -> Bool) -> SlotBitmap {
        var result = SlotBitmap(slotCount: candidates.slotCount)
        candidates.forEachSlot { slot in
            statistics.payloadChecks += 1
            if test(view.payload(ofSlot: slot), view.pointIDs[slot]) { result.insert(slot) }
        }
        return result
    }

    /// The slots of `candidates` (of which there are `count`) that pass `filter`.
    private mutating func resolve(_ filter: Filter, within candidates: SlotBitmap, count: Int) -> SlotBitmap {
        guard !filter.isEmpty, count > 0 else { return candidates }
        guard usesIndex(filter) else {
            statistics.fullScans += 1
            return scan(candidates) { filter.matches(payload: $0, id: $1) }
        }
        var candidates = candidates
        var count = count

        // must: the cheapest lookups first, each against the candidates left; then filters used as conditions;
        // then the rest on the payloads of the survivors.
        var unanswered: [Condition] = []
        var innerFilters: [Filter] = []
        var answers: [Answer] = []
        for condition in filter.must {
            if case .filter(let inner) = condition {
                innerFilters.append(inner)
            } else if let answer = answer(condition) {
                answers.append(answer)
            } else {
                unanswered.append(condition)
            }
        }
        for answer in answers.sorted(by: { $0.cardinality < $1.cardinality }) {
            guard count > 0, answer.cost < Double(count) else {
                unanswered.append(answer.condition)
                continue
            }
            candidates.formIntersection(slots(answer))
            count = candidates.count
        }
        for inner in innerFilters where count > 0 {
            candidates = resolve(inner, within: candidates, count: count)
            count = candidates.count
        }
        if !unanswered.isEmpty, count > 0 {
            candidates = scan(candidates) { payload, id in
                unanswered.allSatisfy { $0.matches(payload: payload, id: id) }
            }
            count = candidates.count
        }

        // must_not
        unanswered = []
        for condition in filter.mustNot where count > 0 {
            if case .filter(let inner) = condition {
                candidates.subtract(resolve(inner, within: candidates, count: count))
                count = candidates.count
            } else if let answer = answer(condition), answer.cost < Double(count) {
                candidates.subtract(slots(answer))
                count = candidates.count
            } else {
                unanswered.append(condition)
            }
        }
        if !unanswered.isEmpty, count > 0 {
            candidates = scan(candidates) { payload, id in
                !unanswered.contains { $0.matches(payload: payload, id: id) }
            }
            count = candidates.count
        }

        // should: the union of what each condition passes among the candidates.
        if !filter.should.isEmpty, count > 0 {
            var passing = SlotBitmap(slotCount: candidates.slotCount)
            unanswered = []
            for condition in filter.should {
                if case .filter(let inner) = condition {
                    var rest = candidates
                    rest.subtract(passing)
                    passing.formUnion(resolve(inner, within: rest, count: rest.count))
                } else if let answer = answer(condition), answer.cost < Double(count) {
                    var found = slots(answer)
                    found.formIntersection(candidates)
                    passing.formUnion(found)
                } else {
                    unanswered.append(condition)
                }
            }
            if !unanswered.isEmpty {
                var rest = candidates
                rest.subtract(passing)
                passing.formUnion(
                    scan(rest) { payload, id in unanswered.contains { $0.matches(payload: payload, id: id) } }
                )
            }
            candidates = passing
            count = candidates.count
        }

        // min_should: count, per candidate, the conditions that hold.
        if let minShould = filter.minShould, minShould.minCount > 0, count > 0 {
            var found: [SlotBitmap] = []
            unanswered = []
            for condition in minShould.conditions {
                if case .filter(let inner) = condition {
                    found.append(resolve(inner, within: candidates, count: count))
                } else if let answer = answer(condition), answer.cost < Double(count) {
                    found.append(slots(answer))
                } else {
                    unanswered.append(condition)
                }
            }
            let wanted = minShould.minCount
            var checks = 0
            var result = SlotBitmap(slotCount: candidates.slotCount)
            candidates.forEachSlot { slot in
                var satisfied = found.lazy.filter { $0.contains(slot) }.count
                if satisfied < wanted, !unanswered.isEmpty {
                    checks += 1
                    let payload = view.payload(ofSlot: slot)
                    for condition in unanswered where satisfied < wanted {
                        if condition.matches(payload: payload, id: view.pointIDs[slot]) { satisfied += 1 }
                    }
                }
                if satisfied >= wanted { result.insert(slot) }
            }
            statistics.payloadChecks += checks
            candidates = result
        }
        return candidates
    }
}

/// Which parts of a payload a read returns: Qdrant's `with_payload` `include` (a list of keys) or `exclude`.
///
/// Keys are payload key paths (`a`, `a.b`, `a[].b`). Applied as Qdrant's client does:
/// - **include** keeps, for each key, the value at its path with the objects around it; members the key does
///   not name are dropped from those objects (an object on the path is kept, empty if nothing under it
///   matches). A member step on an array keeps an empty array, `[]` applies the rest of the key to every
///   element, and a scalar met before the key's end is kept whole. Several keys merge (`a.b` and `a.c` give
///   `{"a": {"b": …, "c": …}}`).
/// - **exclude** removes the value at each key's path, leaving the objects around it (`[]` at the end empties
///   the array); a path that leads nowhere removes nothing.
///
/// Array indices (`a[0]`) are refused: Qdrant's server and its client disagree about them.
public struct PayloadSelector: Hashable, Sendable {
    /// Keep only the keys, or drop them.
    public enum Mode: Hashable, Sendable {
        case include
        case exclude
    }

    /// Whether the keys are kept or dropped.
    public let mode: Mode
    /// The keys, parsed.
    public let keys: [PayloadKey]

    /// A selector keeping `keys`.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a malformed key or one with an array index.
    public init(include keys: [String]) throws(TesseraError) {
        self.mode = .include
        self.keys = try Self.parse(keys)
    }

    /// A selector dropping `keys`.
    /// - Throws: ``TesseraError/Code/invalidArgument`` for a malformed key or one with an array index.
    public init(exclude keys: [String]) throws(TesseraError) {
        self.mode = .exclude
        self.keys = try Self.parse(keys)
    }

    private static func parse(_ keys: [String]) throws(TesseraError) -> [PayloadKey] {
        var parsed: [PayloadKey] = []
        for text in keys {
            let key = try PayloadKey(text)
            if key.steps.contains(where: { if case .element = $0 { true } else { false } }) {
                throw TesseraError(
                    .invalidArgument,
                    "payload selector key '\(text)' has an array index; only [] (every element) is supported"
                )
            }
            parsed.append(key)
        }
        return parsed
    }

    /// The selected part of `payload`.
    public func apply(to payload: JSONObject) -> JSONObject {
        let paths = keys.map { ArraySlice($0.steps) }
        let result: JSONValue
        switch mode {
        case .include: result = Self.include(.object(payload), paths)
        case .exclude: result = Self.exclude(.object(payload), paths)
        }
        guard case .object(let object) = result else { return [:] }
        return object
    }

    /// The rest of each path after a first step naming `name` (byte-exact, as payload keys compare).
    private static func rests(
        _ paths: [ArraySlice<PayloadKey.Step>],
        member name: String
    ) -> [ArraySlice<
        PayloadKey.Step
    >] {
        paths.compactMap { path in
            guard case .member(let step)? = path.first, step.utf8.elementsEqual(name.utf8) else { return nil }
            return path.dropFirst()
        }
    }

    /// The rest of each path after a first `[]`.
    private static func elementRests(_ paths: [ArraySlice<PayloadKey.Step>]) -> [ArraySlice<PayloadKey.Step>] {
        paths.compactMap { path in
            guard case .everyElement? = path.first else { return nil }
            return path.dropFirst()
        }
    }

    private static func include(_ value: JSONValue, _ paths: [ArraySlice<PayloadKey.Step>]) -> JSONValue {
        if paths.contains(where: \.isEmpty) { return value }
        switch value {
        case .object(let object):
            var kept = JSONObject()
            for (name, member) in object {
                let rest = rests(paths, member: name)
                if !rest.isEmpty { kept[name] = include(member, rest) }
            }
            return .object(kept)
        case .array(let elements):
            let rest = elementRests(paths)
            if rest.isEmpty { return .array([]) }
            return .array(elements.map { include($0, rest) })
        default:
            return value
        }
    }

    private static func exclude(_ value: JSONValue, _ paths: [ArraySlice<PayloadKey.Step>]) -> JSONValue {
        switch value {
        case .object(let object):
            var kept = JSONObject()
            for (name, member) in object {
                let rest = rests(paths, member: name)
                if rest.isEmpty {
                    kept[name] = member
                } else if !rest.contains(where: \.isEmpty) {
                    kept[name] = exclude(member, rest)
                }
            }
            return .object(kept)
        case .array(let elements):
            let rest = elementRests(paths)
            if rest.isEmpty { return value }
            if rest.contains(where: \.isEmpty) { return .array([]) }
            return .array(elements.map { exclude($0, rest) })
        default:
            return value
        }
    }
}

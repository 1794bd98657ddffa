/// How payload writes change a point's payload: Qdrant's `set_payload` (with or without a nested `key`),
/// `overwrite_payload`, `delete_payload` and `clear_payload`.
public enum PayloadUpdate: Hashable, Sendable {
    /// Sets the members of `payload`, keeping the others; a member set to `null` is removed. With a `key`, the
    /// members are set in the object at that path instead (`a.b`, `a[].b`, `a[2]`), objects created on the way
    /// where the path leads nowhere; a scalar met on the way is replaced by an object, and an array step on
    /// something that is not an array replaces it by an empty array.
    case set(JSONObject, key: PayloadKey?)
    /// Replaces the whole payload.
    case overwrite(JSONObject)
    /// Removes the values at these keys: a member, every element's member through `[]`, or the whole content of
    /// an array for a key ending in `[]`. A key ending in an index (`a[0]`) removes nothing (as Qdrant's server),
    /// and a path that leads nowhere removes nothing.
    case delete([PayloadKey])
    /// Empties the payload.
    case clear

    /// The payload after this update.
    public func apply(to payload: JSONObject) -> JSONObject {
        switch self {
        case .set(let values, nil):
            return Self.merge(values, into: payload)
        case .set(let values, let key?):
            var whole = JSONValue.object(payload)
            Self.set(values, at: key.steps[...], in: &whole)
            if case .object(let object) = whole { return object }
            return payload
        case .overwrite(let values):
            return values
        case .delete(let keys):
            var whole = JSONValue.object(payload)
            for key in keys { Self.remove(at: key.steps[...], in: &whole) }
            if case .object(let object) = whole { return object }
            return payload
        case .clear:
            return [:]
        }
    }

    /// The values it writes, for checks before writing (non-finite numbers).
    var written: JSONObject {
        switch self {
        case .set(let values, _), .overwrite(let values): values
        case .delete, .clear: [:]
        }
    }

    /// `object` with the members of `values` set, and those set to `null` removed.
    static func merge(_ values: JSONObject, into object: JSONObject) -> JSONObject {
        var result = object
        for (name, value) in values {
            if case .null = value { result.removeValue(forKey: name) } else { result[name] = value }
        }
        return result
    }

    /// Merges `values` into the object reached by `steps` from `value`.
    private static func set(_ values: JSONObject, at steps: ArraySlice<PayloadKey.Step>, in value: inout JSONValue) {
        guard let step = steps.first else { return }
        let rest = steps.dropFirst()
        switch step {
        case .member(let name):
            guard case .object(var object) = value else {
                // Not an object: replaced by one holding the rest of the path.
                var inner = JSONValue.object([:])
                if rest.isEmpty { inner = .object(merge(values, into: [:])) } else { set(values, at: rest, in: &inner) }
                value = .object([name: inner])
                return
            }
            var member = object[name] ?? .object([:])
            if rest.isEmpty { mergeInto(&member, values) } else { set(values, at: rest, in: &member) }
            object[name] = member
            value = .object(object)
        case .element(let index):
            guard case .array(var elements) = value else {
                value = .array([])
                return
            }
            guard index < elements.count else { return }
            if rest.isEmpty { mergeInto(&elements[index], values) } else { set(values, at: rest, in: &elements[index]) }
            value = .array(elements)
        case .everyElement:
            guard case .array(var elements) = value else {
                value = .array([])
                return
            }
            for index in elements.indices {
                if rest.isEmpty {
                    mergeInto(&elements[index], values)
                } else {
                    set(values, at: rest, in: &elements[index])
                }
            }
            value = .array(elements)
        }
    }

    /// Merges `values` into `value` when it is an object, or replaces it by an object of them.
    private static func mergeInto(_ value: inout JSONValue, _ values: JSONObject) {
        if case .object(let object) = value {
            value = .object(merge(values, into: object))
        } else {
            value = .object(merge(values, into: [:]))
        }
    }

    /// Removes what `steps` reach from `value`.
    private static func remove(at steps: ArraySlice<PayloadKey.Step>, in value: inout JSONValue) {
        guard let step = steps.first else { return }
        let rest = steps.dropFirst()
        switch (step, value) {
        case (.member(let name), .object(var object)):
            if rest.isEmpty {
                object.removeValue(forKey: name)
            } else if var member = object[name] {
                remove(at: rest, in: &member)
                object[name] = member
            }
            value = .object(object)
        case (.everyElement, .array(var elements)):
            if rest.isEmpty {
                elements = []
            } else {
                for index in elements.indices { remove(at: rest, in: &elements[index]) }
            }
            value = .array(elements)
        case (.element(let index), .array(var elements)):
            guard !rest.isEmpty, index < elements.count else { return }
            remove(at: rest, in: &elements[index])
            value = .array(elements)
        default:
            return
        }
    }
}

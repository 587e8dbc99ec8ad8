import { countryOf } from './alert.js';
import type { Agreement, AgreementSet } from './agreements.js';
import { timeOf } from './rfc3339.js';

/**
 * An agreement set indexed by party and by alert type, so that evaluating an alert looks only at
 * the agreements of its sender and of each candidate, never at every agreement. Positions are
 * indexes into `set.agreements`, ascending: file order, which decides which agreement wins.
 */
export interface AgreementIndex {
  /** Positions of the agreements that include `agency` (named itself or by its country). */
  including(agency: string): readonly number[];
  /** The same positions as a set, for intersections. */
  includingSet(agency: string): ReadonlySet<number>;
  /** Positions of the agreements that cover alert type `type`. */
  covering(type: string): ReadonlySet<number>;
  /** Agreement `id` in its highest version in the set, if any. */
  latest(id: string): Agreement | undefined;
  /**
   * The agreements `from` and `to` are both party to (positions, file order), and of those the
   * ones that cover alert type `type`: the only ones that can allow the flow. Memoised per pair
   * and type, so routing an alert costs a lookup per candidate, not a walk over agreements.
   */
  between(from: string, to: string, type: string): PairAgreements;
  /** Agreement at position `i`'s validity window, parsed once: milliseconds since the epoch. */
  validity(i: number): { readonly from: number; readonly until: number | undefined };
}

/** What {@link AgreementIndex.between} answers. */
export interface PairAgreements {
  /** Every agreement both parties are party to, whatever it covers. */
  readonly shared: readonly number[];
  /** Those of `shared` that cover the alert type. */
  readonly applicable: readonly number[];
}

const EMPTY: readonly number[] = [];
const EMPTY_SET: ReadonlySet<number> = new Set();

/** Indexes are built once per set: a set is never changed once parsed. */
const indexes = new WeakMap<AgreementSet, AgreementIndex>();

/** The index of `set`, built on first use and kept as long as the set is. */
export function agreementIndex(set: AgreementSet): AgreementIndex {
  let index = indexes.get(set);
  if (!index) {
    index = buildIndex(set.agreements);
    indexes.set(set, index);
  }
  return index;
}

function buildIndex(agreements: readonly Agreement[]): AgreementIndex {
  const byParty = new Map<string, number[]>();
  const byType = new Map<string, Set<number>>();
  const latestById = new Map<string, Agreement>();
  agreements.forEach((a, i) => {
    for (const p of a.parties) {
      const list = byParty.get(p);
      if (!list) byParty.set(p, [i]);
      else if (list[list.length - 1] !== i) list.push(i);
    }
    for (const t of a.alertTypes) {
      const s = byType.get(t);
      if (s) s.add(i);
      else byType.set(t, new Set([i]));
    }
    const best = latestById.get(a.id);
    if (!best || a.version > best.version) latestById.set(a.id, a);
  });
  // Per agency, memoised: the candidates are the trust store's agencies, the same for every alert.
  const ofAgency = new Map<string, readonly number[]>();
  const setOfAgency = new Map<string, ReadonlySet<number>>();
  const including = (agency: string): readonly number[] => {
    let list = ofAgency.get(agency);
    if (!list) {
      list = mergeAscending(byParty.get(agency) ?? EMPTY, byParty.get(countryOf(agency)) ?? EMPTY);
      ofAgency.set(agency, list);
    }
    return list;
  };
  const pairs = new Map<string, Map<string, Map<string, PairAgreements>>>();
  const sharedOf = (from: string, to: string): readonly number[] => {
    const ofFrom = including(from);
    const ofTo = including(to);
    if (ofFrom.length === 0 || ofTo.length === 0) return EMPTY;
    // Walk the shorter list, look positions up in the other's set.
    if (ofTo.length <= ofFrom.length) {
      const fromSet = setOf(from);
      return ofTo.filter((i) => fromSet.has(i));
    }
    const toSet = setOf(to);
    return ofFrom.filter((i) => toSet.has(i));
  };
  const setOf = (agency: string): ReadonlySet<number> => {
    let s = setOfAgency.get(agency);
    if (!s) {
      s = new Set(including(agency));
      setOfAgency.set(agency, s);
    }
    return s;
  };
  const windows = agreements.map((a) => ({
    from: timeOf(a.validFrom),
    until: a.validUntil === undefined ? undefined : timeOf(a.validUntil),
  }));
  return {
    including,
    includingSet: setOf,
    between(from, to, type) {
      let ofFrom = pairs.get(from);
      if (!ofFrom) pairs.set(from, (ofFrom = new Map<string, Map<string, PairAgreements>>()));
      let ofPair = ofFrom.get(to);
      if (!ofPair) ofFrom.set(to, (ofPair = new Map<string, PairAgreements>()));
      let p = ofPair.get(type);
      if (!p) {
        const shared = ofPair.values().next().value?.shared ?? sharedOf(from, to);
        const covers = byType.get(type) ?? EMPTY_SET;
        p = { shared, applicable: shared.filter((i) => covers.has(i)) };
        ofPair.set(type, p);
      }
      return p;
    },
    validity: (i) => windows[i]!,
    covering: (type) => byType.get(type) ?? EMPTY_SET,
    latest: (id) => latestById.get(id),
  };
}

/** The union of two ascending lists, ascending, each position once. */
function mergeAscending(a: readonly number[], b: readonly number[]): readonly number[] {
  if (b.length === 0 || a === b) return a;
  if (a.length === 0) return b;
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x < y)) {
      out.push(x!);
      i++;
    } else if (x === undefined || y < x) {
      out.push(y);
      j++;
    } else {
      out.push(x);
      i++;
      j++;
    }
  }
  return out;
}

/**
 * The ids of every item in an agency's verified feed, oldest first: its gateway's `/v1/feed`
 * read page by page (`gatewayUrl`, a reader's bearer `token`). How a test sees what reached a
 * partner.
 */
export async function feedIds(gatewayUrl: string, token: string): Promise<string[]> {
  const ids: string[] = [];
  let after = '0';
  for (;;) {
    const res = await fetch(`${gatewayUrl}/v1/feed?after=${after}&limit=1000`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (!res.ok) throw new Error(`GET ${gatewayUrl}/v1/feed: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { items: { id: string }[]; next: string; hasMore: boolean };
    ids.push(...page.items.map((i) => i.id));
    after = page.next;
    if (!page.hasMore) return ids;
  }
}

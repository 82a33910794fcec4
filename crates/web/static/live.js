// The overview's live P&L: /live pushes the open trades at the latest prices (server-sent events). A trade
// that appeared or went away reloads the page, which then shows it in its place.
document.addEventListener("DOMContentLoaded", () => {
  const section = document.getElementById("open-trades");
  if (!section || !window.EventSource) { return; }
  const status = document.getElementById("live-status");
  const source = new EventSource(section.dataset.live);
  source.addEventListener("pnl", (message) => {
    const snapshot = JSON.parse(message.data);
    const shown = Array.from(section.querySelectorAll("tr[data-trade]")).map((row) => row.dataset.trade);
    const now = snapshot.trades.map((trade) => String(trade.id));
    if (shown.length !== now.length || now.some((id) => !shown.includes(id))) {
      source.close();
      window.location.reload();
      return;
    }
    for (const trade of snapshot.trades) {
      const row = document.getElementById("live-" + trade.id);
      row.querySelector(".live-price").textContent = trade.price_text;
      row.querySelector(".live-profit").textContent = trade.profit_text;
    }
    document.getElementById("live-unrealised").textContent = snapshot.unrealised_text;
    if (status) { status.textContent = "· live"; }
  });
  source.onerror = () => { if (status) { status.textContent = "· reconnecting…"; } };
});

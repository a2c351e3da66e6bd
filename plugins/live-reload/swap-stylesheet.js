// Replaces each <link rel="stylesheet"> whose path is `path` with a fresh copy; the old one
// goes once the new one has loaded, so the page never shows unstyled.
export default (path) => {
  for (const link of document.querySelectorAll('link[rel="stylesheet"]')) {
    const url = new URL(link.href);
    if (url.pathname !== path) continue;
    url.searchParams.set("lunar-swap", Date.now());
    const fresh = link.cloneNode();
    fresh.href = url.href;
    fresh.addEventListener("load", () => link.remove());
    fresh.addEventListener("error", () => link.remove());
    link.after(fresh);
  }
};

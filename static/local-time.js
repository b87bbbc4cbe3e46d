// Progressive enhancement: shows each <time datetime> in the browser's own time zone: in the
// tooltip of relative times ("3 minutes ago"), in the text of exact ones. Nothing depends on it;
// without it the page shows UTC.
document.querySelectorAll("time[datetime]").forEach(function (element) {
  var when = new Date(element.getAttribute("datetime"));
  if (isNaN(when.getTime())) return;
  var local = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  var utc = element.getAttribute("title") || "";
  if (element.classList.contains("exact")) {
    element.textContent = local + " (your time)";
  } else {
    element.setAttribute("title", local + " (your time) · " + utc);
  }
});

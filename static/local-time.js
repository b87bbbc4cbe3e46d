// Progressive enhancement: shows each <time datetime> in the browser's own time zone in its
// tooltip, next to the UTC time the server wrote. Nothing depends on it.
document.querySelectorAll("time[datetime]").forEach(function (element) {
  var when = new Date(element.getAttribute("datetime"));
  if (isNaN(when.getTime())) return;
  var local = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  element.setAttribute("title", local + " (your time) · " + (element.getAttribute("title") || ""));
});

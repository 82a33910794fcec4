// The only script the dashboard needs so far: show the confidence slider's value while it moves.
document.addEventListener("DOMContentLoaded", () => {
  const slider = document.getElementById("min_confidence");
  const shown = document.getElementById("min_confidence_value");
  if (slider && shown) {
    slider.addEventListener("input", () => { shown.textContent = slider.value; });
  }
});

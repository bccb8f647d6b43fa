// Projects: the list and a form for a new one.
import { get, post } from "./api.js";
import { $, applyRole, clear, el, guarded, words } from "./util.js";
import { t } from "./i18n.js";

async function load() {
  await guarded(async () => {
    const { projects } = await get("/api/projects");
    const body = $("#projects");
    clear(body);
    for (const project of projects) {
      const href = `/projects/${encodeURIComponent(project.name)}`;
      body.append(el("tr", null,
        el("td", null, el("a", { href }, project.name)),
        el("td", null, project.environment),
        el("td", { class: "mono" }, project.repo_url),
        el("td", { class: "mono" }, project.deploy_path),
        el("td", null, (project.groups || []).join(" ")),
        el("td", { class: "actions" }, el("a", { class: "button small deployer-only",
          href: `${href}/release` }, t("Start release")))));
    }
    if (!projects.length) body.append(el("tr", null, el("td", { colspan: 6, class: "muted" },
      t("none"))));
    applyRole();
  });
}

$("#project-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  guarded(async () => {
    const body = {
      name: form.name.value.trim(),
      environment: form.environment.value.trim() || "production",
      repo_url: form.repo_url.value.trim(),
      deploy_path: form.deploy_path.value.trim(),
      groups: words(form.groups.value),
      description: form.description.value,
    };
    const project = await post("/api/projects", body);
    location.assign(`/projects/${encodeURIComponent(project.name)}`);
  });
});

applyRole();
load();
